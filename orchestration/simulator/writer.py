"""Writing the simulated book as the core-banking SQLite database and settlement files.

`simulate` shows the source as it looked at the end of day `until`. Called again
on the same folder with a later `until`, it appends the rows that appeared since
and updates only the rows that changed, like a live core-banking system.
"""

import os
import sqlite3
from datetime import date
from pathlib import Path

import numpy as np

from .book import CHANNELS, EMPLOYMENT, PRODUCTS, PROVINCES, simulate_book

EPOCH = date(1970, 1, 1).toordinal()
SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗")
GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华")
FAILURE_REASONS = ["insufficient_funds", "card_expired", "account_frozen", "limit_exceeded", "other"]
GW_CHANNELS = ["bank_card_debit", "alipay", "wechat_pay", "bank_transfer", "counter"]
GW_STATUS = ["succeeded", "failed", "refunded"]
TXN_TYPES = ["disbursement", "repayment", "reversal", "waiver", "write_off", "recovery"]
ACTION_CHANNELS = ["sms", "app_push", "email", "call", "field_visit", "legal_letter", "agency"]
OUTCOMES = ["delivered", "no_answer", "contacted", "promise_to_pay", "refused", "wrong_number", "dispute"]

TABLES = {
    "customers": "customer_id TEXT, full_name TEXT, national_id TEXT, phone TEXT, email TEXT, birth_date TEXT, "
                 "province TEXT, monthly_income REAL, employment_type TEXT, do_not_contact INTEGER, created_at TEXT, "
                 "updated_at TEXT",
    "loan_products": "product_id TEXT, product_name TEXT, product_type TEXT, term_months INTEGER, annual_rate REAL",
    "loans": "loan_id TEXT, customer_id TEXT, product_id TEXT, principal REAL, annual_rate REAL, term_months INTEGER, "
             "disbursed_on TEXT, channel TEXT, status TEXT, status_changed_on TEXT, updated_at TEXT",
    "repayment_schedule": "loan_id TEXT, installment_no INTEGER, due_date TEXT, principal_due REAL, interest_due REAL, "
                          "fee_due REAL",
    "loan_transactions": "txn_id TEXT, loan_id TEXT, txn_type TEXT, amount REAL, principal_portion REAL, "
                         "interest_portion REAL, fee_portion REAL, value_date TEXT, booked_at TEXT, "
                         "reverses_txn_id TEXT, payment_id TEXT",
    "collection_actions": "action_id TEXT, loan_id TEXT, action_at TEXT, channel TEXT, agent_id TEXT, outcome TEXT, "
                          "promised_amount REAL, promised_date TEXT",
}
INDEXES = [
    ("customers", "customer_id"), ("customers", "updated_at"), ("loan_products", "product_id"), ("loans", "loan_id"),
    ("loans", "updated_at"), ("repayment_schedule", "loan_id"), ("loan_transactions", "txn_id"),
    ("loan_transactions", "booked_at"), ("collection_actions", "action_id"), ("collection_actions", "action_at"),
]
SETTLEMENT_HEADER = "payment_id,loan_id,amount,currency,status,channel,initiated_at,settled_at,failure_reason\n"


def _days(d: date) -> int:
    return d.toordinal() - EPOCH


def _date_str(days) -> np.ndarray:
    return np.datetime_as_string(np.asarray(days, np.int64).astype("datetime64[D]"), unit="D")


def _ts_str(days, seconds) -> np.ndarray:
    t = np.asarray(days, np.int64) * 86400 + np.asarray(seconds, np.int64)
    return np.char.replace(np.datetime_as_string(t.astype("datetime64[s]"), unit="s"), "T", " ")


class Lazy:
    """A text column formatted only when rows are written, chunk by chunk (keeps 1M-loan books in memory)."""

    def __init__(self, fmt, *arrays):
        self.fmt, self.arrays = fmt, arrays

    def take(self, idx) -> list:
        return self.fmt(*(a[idx] for a in self.arrays))


def _codes(values: list):
    """Formats small integer codes as their text values (-1 = NULL)."""
    lookup = np.array(list(values) + [None], dtype=object)
    return lambda codes: lookup[codes].tolist()


def _money_text(cents) -> list:
    return np.round(np.asarray(cents, np.int64) / 100.0, 2).tolist()


def _ids(prefix: str, width: int):
    return lambda nums: [f"{prefix}{v:0{width}d}" if v >= 0 else None for v in nums.tolist()]


def _dates(days) -> list:
    if not len(days):
        return []
    return [None if d < 0 else s for d, s in zip(days.tolist(), _date_str(np.maximum(days, 0)).tolist())]


def _stamps(days, secs) -> list:
    return _ts_str(days, secs).tolist() if len(days) else []


def _money(cents) -> np.ndarray:
    return np.round(np.asarray(cents, np.int64) / 100.0, 2)


def build_tables(n_loans: int, start: date, end: date, seed: int) -> dict:
    """Every row the source will ever hold (up to `end`), with the day it becomes visible."""
    b = simulate_book(n_loans, _days(start), _days(end), seed)
    rng = b["rng"]
    L, C, S = b["loans"], b["customers"], b.pop("schedule")
    n, n_cust = b["n"], b["n_cust"]
    loan_ids = np.char.add("L", np.char.zfill(np.arange(1, n + 1).astype(str), 8))
    cust_ids = np.char.add("C", np.char.zfill(np.arange(1, n_cust + 1).astype(str), 7))

    # customers: created just before their first loan; some become do-not-contact later
    first_loan = np.full(n_cust, 10**9, np.int64)
    np.minimum.at(first_loan, L["cust"], L["disbursed"])
    has_loan = first_loan < 10**9
    created_day = np.where(has_loan, first_loan, _days(start))
    created_sec = rng.integers(8 * 3600, 9 * 3600, n_cust)
    flip = (rng.random(n_cust) < 0.01) & (C["dnc"] == 0)
    flip_day = np.where(flip, created_day + rng.integers(30, 400, n_cust), -1)
    flip &= flip_day <= _days(end)
    birth = created_day - C["age"] * 365 - rng.integers(0, 365, n_cust)
    names = np.char.add(np.array(SURNAMES)[rng.integers(0, len(SURNAMES), n_cust)],
                        np.char.add(np.array(GIVEN)[rng.integers(0, len(GIVEN), n_cust)],
                                    np.where(rng.random(n_cust) < 0.6,
                                             np.array(GIVEN)[rng.integers(0, len(GIVEN), n_cust)], "")))
    region = rng.integers(110000, 659999, n_cust).astype(str)
    body = np.char.add(np.char.add(region, np.char.replace(_date_str(birth), "-", "")),
                       np.char.zfill(rng.integers(0, 1000, n_cust).astype(str), 3))
    digits = body.astype("S17").view(np.uint8).reshape(-1, 17).astype(np.int64) - 48
    weights = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])  # GB 11643 check character
    nid = np.char.add(body, np.array(list("10X98765432"))[(digits @ weights) % 11])
    phone = np.char.add(np.char.add("1", rng.integers(3, 10, n_cust).astype(str)),
                        np.char.zfill(rng.integers(0, 10**9, n_cust).astype(str), 9))
    email = np.where(rng.random(n_cust) < 0.6, np.char.add(np.char.add("user", np.arange(1, n_cust + 1).astype(str)),
                                                         "@example.cn"), None)
    customers = {
        "customer_id": cust_ids, "full_name": names, "national_id": nid.astype("U18"), "phone": phone.astype("U11"), "email": email,
        "birth_date": Lazy(_dates, birth),
        "province": np.where(C["province_missing"], None, np.array(PROVINCES, dtype=object)[C["province"]]),
        "monthly_income": np.where(C["income_missing"], None, np.round(C["income"], 2)),
        "employment_type": np.array(EMPLOYMENT, dtype=object)[C["employment"]],
        "do_not_contact": C["dnc"], "created_at": Lazy(_stamps, created_day, created_sec),
        "_created_day": created_day, "_created_sec": created_sec,
        "_known": created_day, "_flip_day": flip_day, "_flip_sec": created_sec + 3600,
    }
    # a customer's first loan is disbursed after the customer exists
    dsec = np.maximum(rng.integers(9 * 3600, 18 * 3600, n), created_sec[L["cust"]] + 60)
    loans = {
        "loan_id": loan_ids, "customer_id": cust_ids[L["cust"]],
        "product_id": np.array([p[0] for p in PRODUCTS], dtype=object)[L["product"]],
        "principal": _money(L["principal"]), "annual_rate": L["rate"], "term_months": L["term"],
        "disbursed_on": Lazy(_dates, L["disbursed"]), "channel": np.array(CHANNELS, dtype=object)[L["channel"]],
        "_known": L["disbursed"], "_dsec": dsec, "_closed_on": L["closed_on"], "_closed_as": L["closed_as"],
        "_status_day": L["status_day"],
    }
    k = np.arange(S["due"].shape[1])
    live = S["due"] >= 0
    li, ki = np.nonzero(live)
    schedule = {
        "loan_id": Lazy(_ids("L", 8), (li + 1).astype(np.int32)), "installment_no": (ki + 1).astype(np.int8),
        "due_date": Lazy(_dates, S["due"][li, ki].astype(np.int32)),
        "principal_due": Lazy(_money_text, S["p"][li, ki].astype(np.int32)),
        "interest_due": Lazy(_money_text, S["i"][li, ki].astype(np.int32)),
        "fee_due": Lazy(_money_text, S["f"][li, ki].astype(np.int32)), "_known": L["disbursed"][li].astype(np.int32),
    }
    del k, S, live, li, ki  # the loan x installment matrices are no longer needed

    # ---- ledger and gateway ------------------------------------------------------------------
    P = b["payments"]
    m = len(P["loan"])
    rows = {c: [] for c in ("loan", "type", "amt", "prin", "intr", "fee", "value", "booked", "sec", "rev_of", "pay_id")}

    def add(loan, typ, amt, prin, intr, fee, value, booked, sec, rev_of=None, pay_id=None):
        cnt = len(loan)
        for c, v in zip(rows, (loan, np.full(cnt, TXN_TYPES.index(typ), np.int8), amt, prin, intr, fee, value, booked, sec,
                               np.full(cnt, -1, np.int64) if rev_of is None else rev_of,
                               np.full(cnt, -1, np.int64) if pay_id is None else pay_id)):
            rows[c].append(v)

    zero = lambda c: np.zeros(c, np.int64)  # noqa: E731
    add(np.arange(n), "disbursement", L["principal"], L["principal"], zero(n), zero(n), L["disbursed"],
        L["disbursed"], dsec + 60)
    pay_ids = np.where(P["gateway"], np.arange(1, m + 1), -1)  # PAY<n>; failed debits are DBT<n>, stored as -n
    pay_row0 = sum(len(x) for x in rows["loan"])
    add(P["loan"], "repayment", P["amt"], P["prin"], P["intr"], P["fee"], P["day"], P["day"] + P["lag"], P["hour"],
        pay_id=pay_ids)
    rv = np.flatnonzero(P["reversed"])
    refund_rv = P["refund"][rv]
    # a refund shows in a later day's settlement file; other reversals are booking errors found within days
    rev_day = P["day"][rv] + np.where(refund_rv, rng.integers(1, 5, len(rv)), rng.integers(0, 4, len(rv)))
    rev_booked = np.maximum(rev_day, P["day"][rv] + P["lag"][rv])  # booked no earlier than the repayment
    add(P["loan"][rv], "reversal", P["amt"][rv], P["prin"][rv], P["intr"][rv], P["fee"][rv], rev_day, rev_booked,
        np.full(len(rv), 23 * 3600 + 1800), rev_of=pay_row0 + rv)
    again = rev_booked + rng.integers(1, 4, len(rv))  # most borrowers pay again (a corrected repayment)
    # only borrowers on the way to a write-off leave a reversed repayment unpaid
    ag = (rng.random(len(rv)) < 0.8) | (L["closed_as"][P["loan"][rv]] != 2) | (rev_booked >= L["closed_on"][P["loan"][rv]])
    add(P["loan"][rv][ag], "repayment", P["amt"][rv][ag], P["prin"][rv][ag], P["intr"][rv][ag], P["fee"][rv][ag],
        again[ag], again[ag], rng.integers(10 * 3600, 20 * 3600, int(ag.sum())))
    W = b["waivers"]
    add(W["loan"], "waiver", W["amt"], zero(len(W["loan"])), W["intr"], W["fee"], W["day"], W["day"],
        np.full(len(W["loan"]), 15 * 3600))
    WO = b["writeoffs"]
    # a reversal left unpaid before a write-off raises the principal written off
    unpaid_rev = rv[~ag]
    rv_wo_day = L["closed_on"][P["loan"][unpaid_rev]]
    before = rev_booked[~ag] < rv_wo_day
    WO = dict(WO, amt=WO["amt"].copy())
    pos = np.searchsorted(WO["loan"], P["loan"][unpaid_rev][before])
    np.add.at(WO["amt"], pos, P["prin"][unpaid_rev][before])
    add(WO["loan"], "write_off", WO["amt"], WO["amt"], zero(len(WO["loan"])), zero(len(WO["loan"])), WO["day"],
        WO["day"], np.full(len(WO["loan"]), 17 * 3600))
    R = b["recoveries"]
    add(R["loan"], "recovery", R["amt"], R["amt"], zero(len(R["loan"])), zero(len(R["loan"])), R["day"], R["day"],
        np.full(len(R["loan"]), 16 * 3600))
    cat = {c: np.concatenate(v) for c, v in rows.items()}
    del rows
    end_day = _days(end)
    keep = cat["booked"] <= end_day
    order = np.lexsort((np.arange(len(cat["loan"])), cat["sec"], cat["booked"]))
    order = order[keep[order]]
    txn_no = np.empty(len(cat["loan"]), np.int64)
    txn_no[order] = np.arange(1, len(order) + 1)
    rev_of = cat["rev_of"]
    transactions = {
        "txn_id": Lazy(_ids("T", 9), txn_no[order]), "loan_id": Lazy(_ids("L", 8), cat["loan"][order] + 1),
        "txn_type": Lazy(_codes(TXN_TYPES), cat["type"][order]),
        "amount": _money(cat["amt"][order]), "principal_portion": _money(cat["prin"][order]),
        "interest_portion": _money(cat["intr"][order]), "fee_portion": _money(cat["fee"][order]),
        "value_date": Lazy(_dates, cat["value"][order]),
        "booked_at": Lazy(_stamps, cat["booked"][order], cat["sec"][order]),
        "reverses_txn_id": Lazy(_ids("T", 9), np.where(rev_of[order] >= 0, txn_no[np.maximum(rev_of[order], 0)], -1)),
        "payment_id": Lazy(_ids("PAY", 8), cat["pay_id"][order]), "_known": cat["booked"][order],
    }
    del cat

    # gateway: succeeded payments on their value date, refunds later, failed debits in arrears
    G = {c: [] for c in ("loan", "pid", "amt", "status", "channel", "day", "init", "settled", "reason")}

    def gadd(*vals):
        for c, v in zip(G, vals):
            G[c].append(v)

    gw = np.flatnonzero(P["gateway"])
    init = np.maximum(P["hour"][gw] - rng.integers(600, 7200, len(gw)), 6 * 3600)
    chan_all = np.where(rng.random(m) < 0.5, 0, 1 + rng.choice(4, m, p=[0.45, 0.4, 0.1, 0.05])).astype(np.int8)
    gadd(P["loan"][gw], pay_ids[gw], P["amt"][gw], np.full(len(gw), 0, np.int8), chan_all[gw],
         P["day"][gw], P["day"][gw] * 86400 + init, P["day"][gw] * 86400 + init + rng.integers(5, 900, len(gw)),
         np.full(len(gw), -1, np.int8))
    refund = rv[refund_rv]
    rday = rev_day[refund_rv]
    gadd(P["loan"][refund], pay_ids[refund], P["amt"][refund], np.full(len(refund), 2, np.int8),
         chan_all[refund], rday, P["day"][refund] * 86400 + np.maximum(P["hour"][refund] - 3600, 6 * 3600),
         rday * 86400 + 11 * 3600, np.full(len(refund), -1, np.int8))
    # failed automatic debits on and after due dates of borrowers who do not pay: the earliest warning
    Sp = b["spells"]
    attempts = np.array([0, 1, 2, 3, 5, 7, 10, 14, 21, 30, 45, 60])
    take_p = np.array([0.9, 0.8, 0.7, 0.5, 0.35, 0.3, 0.25, 0.2, 0.15, 0.12, 0.1, 0.08])
    stop = np.where(Sp["pay_day"] >= 0, Sp["pay_day"], Sp["stop"])
    stop = np.where(Sp["kind"] == 2, np.minimum(stop, np.where(L["closed_on"][Sp["loan"]] >= 0,
                                                                L["closed_on"][Sp["loan"]], 10**9)), stop)
    a_sp, a_day = [], []
    for att, p_take in zip(attempts, take_p):  # one pass per retry, across all spells (bounded memory)
        day = Sp["start"] + att
        ok = (day < stop) & (day <= end_day) & (rng.random(len(day)) < p_take)
        ok &= (Sp["kind"] != 0) | (rng.random(len(day)) < 0.3)  # a borrower a few days late: fewer
        a_sp.append(np.flatnonzero(ok))
        a_day.append(day[ok])
    a_sp, a_day = np.concatenate(a_sp), np.concatenate(a_day)
    a_loan = Sp["loan"][a_sp]
    fid = -np.arange(1, len(a_loan) + 1)
    gadd(a_loan, fid, np.maximum(Sp["overdue"][a_sp], 100), np.full(len(a_loan), 1, np.int8),
         np.full(len(a_loan), 0, np.int8), a_day,
         a_day * 86400 + rng.integers(6 * 3600, 8 * 3600, len(a_day)), np.full(len(a_loan), -1, np.int64),
         rng.choice(5, len(a_loan), p=[0.82, 0.05, 0.04, 0.05, 0.04]).astype(np.int8))
    # false alarms: a good borrower's morning debit fails, then the borrower pays the same day
    fa = np.flatnonzero((P["spell"] < 0) & (rng.random(m) < 0.03))
    gadd(P["loan"][fa], -(len(a_loan) + 1 + np.arange(len(fa))), P["amt"][fa],
         np.full(len(fa), 1, np.int8), np.full(len(fa), 0, np.int8), P["day"][fa],
         P["day"][fa] * 86400 + rng.integers(6 * 3600, 8 * 3600, len(fa)), np.full(len(fa), -1, np.int64),
         rng.choice(5, len(fa), p=[0.7, 0.1, 0.05, 0.1, 0.05]).astype(np.int8))
    G = {c: np.concatenate(v) for c, v in G.items()}
    gk = G["day"] <= end_day
    G = {c: v[gk] for c, v in G.items()}
    go = np.lexsort((G["init"], G["day"]))
    G = {c: v[go] for c, v in G.items()}

    # ---- collection actions, by days past due of each delinquency spell -------------------------
    dnc_from = np.where(C["dnc"] == 1, -10**9, np.where(flip_day >= 0, flip_day, 10**9))  # per customer
    plan = [  # (days past due, channel)
        (0, "app_push"), (1, "sms"), (2, "app_push"), (3, "sms"), (5, "call"), (7, "email"), (8, "call"),
        (11, "call"), (15, "call"), (19, "call"), (24, "call"), (30, "call"), (35, "sms"), (40, "call"),
        (50, "call"), (60, "field_visit"), (70, "call"), (85, "field_visit"), (95, "legal_letter"), (110, "call"),
        (125, "legal_letter"), (140, "field_visit"), (160, "call"), (182, "agency"), (200, "agency"),
        (230, "agency"), (270, "agency"), (320, "agency"),
    ]
    c_sp, c_day, c_kind = [], [], []
    sp_stop = np.where(Sp["pay_day"] >= 0, Sp["pay_day"], Sp["stop"])
    sp_wo = np.where(L["closed_as"][Sp["loan"]] == 2, L["closed_on"][Sp["loan"]], 10**9)
    sp_settled = np.where(L["closed_as"][Sp["loan"]] == 1, L["closed_on"][Sp["loan"]], 10**9)
    sp_dnc = dnc_from[L["cust"][Sp["loan"]]]
    sp_first = L["disbursed"][Sp["loan"]]
    for kind_no, (offset, kind) in enumerate(plan):  # one pass per step of the plan (bounded memory)
        day = Sp["start"] + offset
        # defaulted loans: collection continues until write-off; agencies chase written-off loans for recoveries
        ok = (day <= sp_stop) & (day < sp_settled) & (day <= end_day) & (day > sp_first)
        ok &= (day < sp_wo) | (kind == "agency")
        ok &= day < sp_dnc  # no outbound contact under a do-not-contact hold
        if offset > 3:
            ok &= Sp["kind"] != 0  # a borrower a few days late only gets reminders
        ok &= rng.random(len(day)) < 0.9
        c_sp.append(np.flatnonzero(ok))
        c_day.append(day[ok])
        c_kind.append(np.full(int(ok.sum()), kind_no, np.int8))
    c_sp, c_day = np.concatenate(c_sp), np.concatenate(c_day)
    c_kind = np.array([ACTION_CHANNELS.index(p[1]) for p in plan], np.int8)[np.concatenate(c_kind)]
    CALL, VISIT, AGENCY, EMAIL, LETTER, PUSH = (ACTION_CHANNELS.index(c) for c in (
        "call", "field_visit", "agency", "email", "legal_letter", "app_push"))
    c_loan = Sp["loan"][c_sp]
    na = len(c_loan)
    best = C["best_hour"][L["cust"][c_loan]]
    is_person = np.isin(c_kind, [CALL, VISIT, AGENCY])
    hour = np.where(is_person, rng.integers(8, 21, na), np.where(c_kind == EMAIL, 8, rng.choice([9, 10, 18], na)))
    hour = np.where(c_kind == VISIT, rng.integers(9, 18, na), hour)
    hour = np.where(c_kind == LETTER, 10, hour)
    # people answer at lunch and in the evening, and most at their own best hour
    reach = np.array([0, 0, 0, 0, 0, 0, 0, 0, .16, .18, .2, .22, .34, .3, .2, .18, .2, .24, .36, .42, .38, .3, 0, 0])
    p_contact = np.minimum(reach[hour] + np.where(hour == best, 0.25, 0.0), 0.9)
    p_contact = np.where(c_kind == VISIT, 0.45, np.where(c_kind == AGENCY, 0.3, p_contact))
    pay_d = Sp["pay_day"][c_sp]
    pays_soon = (pay_d >= c_day) & (pay_d <= c_day + 7)
    u = rng.random(na)
    contacted = u < p_contact
    v = rng.random(na)
    ptp = contacted & (v < np.where(pays_soon, 0.65, 0.3))
    rest = rng.random(na)
    o = {name: OUTCOMES.index(name) for name in OUTCOMES}
    outcome = np.where(~is_person, np.where((rest < 0.97) | (c_kind == PUSH), o["delivered"], o["wrong_number"]),
              np.where(ptp, o["promise_to_pay"],
              np.where(contacted, np.where(rest < 0.7, o["contacted"], np.where(rest < 0.93, o["refused"], o["dispute"])),
              np.where(rest < 0.07, o["wrong_number"], o["no_answer"])))).astype(np.int8)
    agent = np.where(is_person & (c_kind != AGENCY), rng.integers(1, 41, na), -1)
    c_sec = hour * 3600 + rng.integers(0, 3600, na)
    # a kept promise: the borrower really pays by the promised date; broken ones promise the overdue amount
    promised_day = np.where(pays_soon, pay_d + rng.integers(0, 3, na), c_day + rng.integers(1, 8, na))
    promised_day = np.clip(promised_day, c_day + 1, c_day + 7)
    promised = np.where(pays_soon, np.minimum(Sp["pay_amt"][c_sp], Sp["overdue"][c_sp]), Sp["overdue"][c_sp])
    promised = np.where(ptp, np.maximum(np.floor(promised / 1000) * 1000, 100).astype(np.int64), 0)
    ao = np.lexsort((c_loan, c_sec, c_day))
    actions = {
        "action_id": Lazy(_ids("A", 9), np.arange(1, na + 1)),
        "loan_id": Lazy(_ids("L", 8), c_loan[ao] + 1), "action_at": Lazy(_stamps, c_day[ao], c_sec[ao]),
        "channel": Lazy(_codes(ACTION_CHANNELS), c_kind[ao]), "agent_id": Lazy(_ids("AG", 3), agent[ao]), "outcome": Lazy(_codes(OUTCOMES), outcome[ao]),
        "promised_amount": np.where(ptp[ao], _money(promised[ao]), None),
        "promised_date": Lazy(_dates, np.where(ptp[ao], promised_day[ao], -1)),
        "_known": c_day[ao],
    }
    gateway = {"pid": G["pid"], "loan": G["loan"], "amount": _money(G["amt"]), "status": G["status"],
               "channel": G["channel"], "init": G["init"], "settled": G["settled"], "reason": G["reason"],
               "_day": G["day"]}
    return {"customers": customers, "loans": loans, "schedule": schedule, "transactions": transactions,
            "actions": actions, "gateway": gateway}


# ---- writing the source as of a day --------------------------------------------------------

CHUNK = 200_000


def _rows(table: dict, cols: list[str], mask):
    """Rows of `table` where mask holds, as tuples, produced chunk by chunk to bound memory."""
    idx = np.flatnonzero(mask)
    for lo in range(0, len(idx), CHUNK):
        part = idx[lo:lo + CHUNK]
        yield from zip(*[table[c].take(part) if isinstance(table[c], Lazy) else np.asarray(table[c])[part].tolist()
                         for c in cols])


def _loan_status(loans: dict, until: int):
    """Status as known at the end of `until`: a settled loan changes status when its last money is booked."""
    closed = (loans["_status_day"] >= 0) & (loans["_status_day"] <= until)
    status = np.where(closed, np.where(loans["_closed_as"] == 2, "written_off", "settled"), "active").astype(object)
    changed = np.where(closed, _date_str(np.maximum(loans["_closed_on"], 0)), None)
    updated = np.where(closed, _ts_str(np.maximum(loans["_status_day"], 0), np.full(len(status), 22 * 3600 + 1800)),
                       _ts_str(loans["_known"], loans["_dsec"]))
    return status, changed, updated


def _customer_state(cust: dict, until: int):
    flipped = (cust["_flip_day"] >= 0) & (cust["_flip_day"] <= until)
    dnc = np.where(flipped, 1, cust["do_not_contact"])
    updated = np.where(flipped, _ts_str(np.maximum(cust["_flip_day"], 0), cust["_flip_sec"]), _ts_str(cust["_created_day"], cust["_created_sec"]))
    return dnc, updated


LATE_EVERY, LATE_AT, REDELIVERED_AT = 97, 40, 55


def _settlement_files(gw: dict, start: int, until: int, end: int) -> dict[str, bytes]:
    """Files delivered by the end of `until`, one per day (a header only when nothing settled).
    Every 97 days one day's file arrives 3 days late (start + 40, + 137, ...), and another
    (start + 55, + 152, ...) is first delivered with an error (a line missing, or a wrong amount)
    and corrected under the same name the next day."""
    days = np.arange(start, min(until, end) + 1)
    d_sorted = gw["_day"]  # rows are sorted by day
    files = {}
    for d in days:
        cycle, pos = divmod(int(d - start), LATE_EVERY)
        if pos == LATE_AT and until < d + 3:
            continue
        first_delivery = pos == REDELIVERED_AT and until == d
        lo, hi = np.searchsorted(d_sorted, d), np.searchsorted(d_sorted, d, side="right")
        if first_delivery and cycle % 2 == 0 and hi > lo:
            hi -= 1  # the first delivery misses its last line
        sl = slice(lo, hi)
        amounts = [f"{a:.2f}" for a in gw["amount"][sl].tolist()]
        if first_delivery and cycle % 2 == 1:  # the first delivery has a wrong amount on its first success
            ok = np.flatnonzero(gw["status"][sl] == 0)
            if len(ok):
                amounts[ok[0]] = f"{gw['amount'][lo + ok[0]] * 10:.2f}"
        pids = [f"PAY{v:08d}" if v > 0 else f"DBT{-v:08d}" for v in gw["pid"][sl].tolist()]
        init = _stamps(gw["init"][sl] // 86400, gw["init"][sl] % 86400)
        settled = gw["settled"][sl]
        settled_text = _stamps(np.maximum(settled, 0) // 86400, np.maximum(settled, 0) % 86400)
        lines = [SETTLEMENT_HEADER]
        for j, i in enumerate(range(lo, hi)):
            lines.append(",".join([pids[j], f"L{gw['loan'][i] + 1:08d}", amounts[j], "CNY",
                                   GW_STATUS[gw["status"][i]], GW_CHANNELS[gw["channel"][i]], init[j],
                                   settled_text[j] if settled[j] >= 0 else "",
                                   FAILURE_REASONS[gw["reason"][i]] if gw["reason"][i] >= 0 else ""]) + "\n")
        files[f"settlement_{_date_str([d])[0]}.csv"] = "".join(lines).encode("utf-8")
    return files


def simulate(out_dir: Path, loans: int, start: date, end: date, seed: int, until: date | None = None) -> dict:
    """Write (or advance) the simulated source in out_dir as it looked at the end of `until`."""
    until = until or end
    out_dir = Path(out_dir)
    payments = out_dir / "payments"
    payments.mkdir(parents=True, exist_ok=True)
    db_path = out_dir / "core_banking.sqlite"
    params = f"{loans}|{start}|{end}|{seed}"
    t = build_tables(loans, start, end, seed)
    u, start_d, end_d = _days(until), _days(start), _days(end)

    previous = None
    if db_path.exists():
        con = sqlite3.connect(db_path)
        try:
            meta = dict(con.execute("SELECT key, value FROM _simulator_meta").fetchall())
        except sqlite3.Error:
            meta = {}
        con.close()
        if meta.get("params") == params and meta.get("until", "9999") <= until.isoformat():
            previous = _days(date.fromisoformat(meta["until"]))
        else:
            for f in [db_path, *(db_path.with_name(db_path.name + s) for s in ("-wal", "-shm"))]:
                f.unlink(missing_ok=True)
            for f in payments.glob("settlement_*.csv"):
                f.unlink()
    con = sqlite3.connect(db_path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    counts = {}
    with con:
        if previous is None:
            for name, ddl in TABLES.items():
                con.execute(f"CREATE TABLE {name} ({ddl})")
            con.execute("CREATE TABLE _simulator_meta (key TEXT PRIMARY KEY, value TEXT)")
            con.executemany("INSERT INTO loan_products VALUES (?, ?, ?, ?, ?)", [p[:5] for p in PRODUCTS])
            lo = -10**9
        else:
            lo = previous

        def new(table):
            k = table["_known"]
            return (k > lo) & (k <= u)

        cust = t["customers"]
        dnc, c_updated = _customer_state(cust, u)
        cust_now = dict(cust, do_not_contact=dnc, updated_at=c_updated)
        ccols = ["customer_id", "full_name", "national_id", "phone", "email", "birth_date", "province",
                 "monthly_income", "employment_type", "do_not_contact", "created_at", "updated_at"]
        m = new(cust)
        con.executemany(f"INSERT INTO customers VALUES ({','.join('?' * 12)})", _rows(cust_now, ccols, m))
        if previous is not None:  # customers that changed since the last delivery
            changed = ~m & (cust["_known"] <= u) & (cust["_flip_day"] > lo) & (cust["_flip_day"] <= u)
            con.executemany("UPDATE customers SET do_not_contact = ?, updated_at = ? WHERE customer_id = ?",
                            _rows(cust_now, ["do_not_contact", "updated_at", "customer_id"], changed))
            counts["customers_updated"] = int(changed.sum())
        counts["customers"] = int(m.sum())

        ln = t["loans"]
        status, changed_on, updated = _loan_status(ln, u)
        ln_now = dict(ln, status=status, status_changed_on=changed_on, updated_at=updated)
        lcols = ["loan_id", "customer_id", "product_id", "principal", "annual_rate", "term_months", "disbursed_on",
                 "channel", "status", "status_changed_on", "updated_at"]
        m = new(ln)
        con.executemany(f"INSERT INTO loans VALUES ({','.join('?' * 11)})", _rows(ln_now, lcols, m))
        if previous is not None:
            moved = ~m & (ln["_known"] <= u) & (ln["_status_day"] > lo) & (ln["_status_day"] <= u)
            con.executemany("UPDATE loans SET status = ?, status_changed_on = ?, updated_at = ? WHERE loan_id = ?",
                            _rows(ln_now, ["status", "status_changed_on", "updated_at", "loan_id"], moved))
            counts["loans_updated"] = int(moved.sum())
        counts["loans"] = int(m.sum())
        for table, name, cols in (
            ("schedule", "repayment_schedule", ["loan_id", "installment_no", "due_date", "principal_due",
                                                "interest_due", "fee_due"]),
            ("transactions", "loan_transactions", ["txn_id", "loan_id", "txn_type", "amount", "principal_portion",
                                                   "interest_portion", "fee_portion", "value_date", "booked_at",
                                                   "reverses_txn_id", "payment_id"]),
            ("actions", "collection_actions", ["action_id", "loan_id", "action_at", "channel", "agent_id", "outcome",
                                               "promised_amount", "promised_date"]),
        ):
            m = new(t[table])
            con.executemany(f"INSERT INTO {name} VALUES ({','.join('?' * len(cols))})", _rows(t[table], cols, m))
            counts[name] = int(m.sum())
        if previous is None:  # indexes for incremental extraction, built once the bulk load is in
            for table, col in INDEXES:
                con.execute(f"CREATE INDEX ix_{table}_{col} ON {table} ({col})")
        con.execute("INSERT OR REPLACE INTO _simulator_meta VALUES ('params', ?)", [params])
        con.execute("INSERT OR REPLACE INTO _simulator_meta VALUES ('until', ?)", [until.isoformat()])
    con.close()

    written = 0
    for name, content in _settlement_files(t["gateway"], start_d, u, end_d).items():
        path = payments / name
        if path.exists() and path.read_bytes() == content:
            continue
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_bytes(content)
        os.replace(tmp, path)  # a file lands whole
        written += 1
    counts["settlement_files_written"] = written
    counts["until"] = until.isoformat()
    return counts
