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
PAY_CHANNELS = ["alipay", "wechat_pay", "bank_transfer", "counter"]

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
    L, C, S = b["loans"], b["customers"], b["schedule"]
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
    nid = np.char.add(np.char.add(np.char.add(region, np.char.replace(_date_str(birth), "-", "")),
                                  np.char.zfill(rng.integers(0, 1000, n_cust).astype(str), 3)),
                      np.array(list("0123456789X"))[rng.integers(0, 11, n_cust)])
    phone = np.char.add(np.char.add("1", rng.integers(3, 10, n_cust).astype(str)),
                        np.char.zfill(rng.integers(0, 10**9, n_cust).astype(str), 9))
    email = np.where(rng.random(n_cust) < 0.6, np.char.add(np.char.add("user", np.arange(1, n_cust + 1).astype(str)),
                                                         "@example.cn"), None)
    customers = {
        "customer_id": cust_ids, "full_name": names, "national_id": nid, "phone": phone, "email": email,
        "birth_date": _date_str(birth),
        "province": np.where(C["province_missing"], None, np.array(PROVINCES, dtype=object)[C["province"]]),
        "monthly_income": np.where(C["income_missing"], None, np.round(C["income"], 2)),
        "employment_type": np.array(EMPLOYMENT, dtype=object)[C["employment"]],
        "do_not_contact": C["dnc"], "created_at": _ts_str(created_day, created_sec),
        "_known": created_day, "_flip_day": flip_day, "_flip_sec": created_sec + 3600,
    }
    # a customer's first loan is disbursed after the customer exists
    dsec = np.maximum(rng.integers(9 * 3600, 18 * 3600, n), created_sec[L["cust"]] + 60)
    loans = {
        "loan_id": loan_ids, "customer_id": cust_ids[L["cust"]],
        "product_id": np.array([p[0] for p in PRODUCTS], dtype=object)[L["product"]],
        "principal": _money(L["principal"]), "annual_rate": L["rate"], "term_months": L["term"],
        "disbursed_on": _date_str(L["disbursed"]), "channel": np.array(CHANNELS, dtype=object)[L["channel"]],
        "_known": L["disbursed"], "_dsec": dsec, "_closed_on": L["closed_on"], "_closed_as": L["closed_as"],
    }
    k = np.arange(S["due"].shape[1])
    live = S["due"] >= 0
    li, ki = np.nonzero(live)
    schedule = {
        "loan_id": Lazy(_ids("L", 8), li + 1), "installment_no": ki + 1, "due_date": Lazy(_dates, S["due"][li, ki]),
        "principal_due": _money(S["p"][li, ki]), "interest_due": _money(S["i"][li, ki]),
        "fee_due": _money(S["f"][li, ki]), "_known": L["disbursed"][li],
    }
    del k

    # ---- ledger and gateway ------------------------------------------------------------------
    P = b["payments"]
    m = len(P["loan"])
    rows = {c: [] for c in ("loan", "type", "amt", "prin", "intr", "value", "booked", "sec", "rev_of", "pay_id")}

    def add(loan, typ, amt, prin, intr, value, booked, sec, rev_of=None, pay_id=None):
        cnt = len(loan)
        rows["loan"].append(loan)
        rows["type"].append(np.full(cnt, typ, dtype=object))
        rows["amt"].append(amt)
        rows["prin"].append(prin)
        rows["intr"].append(intr)
        rows["value"].append(value)
        rows["booked"].append(booked)
        rows["sec"].append(sec)
        rows["rev_of"].append(np.full(cnt, -1, np.int64) if rev_of is None else rev_of)
        rows["pay_id"].append(np.full(cnt, -1, np.int64) if pay_id is None else pay_id)

    zero = lambda c: np.zeros(c, np.int64)  # noqa: E731
    add(np.arange(n), "disbursement", L["principal"], L["principal"], zero(n), L["disbursed"], L["disbursed"], dsec + 60)
    pay_ids = np.where(P["gateway"], np.arange(1, m + 1), -1)  # PAY<n>; failed debits are DBT<n>, stored as -n
    pay_row0 = sum(len(x) for x in rows["loan"])
    add(P["loan"], "repayment", P["amt"], P["prin"], P["intr"], P["day"], P["day"] + P["lag"], P["hour"],
        pay_id=pay_ids)
    rv = np.flatnonzero(P["reversed"])
    rev_day = P["day"][rv] + rng.integers(0, 4, len(rv))
    # a reversal is booked no earlier than the repayment it undoes
    rev_booked = np.maximum(rev_day, P["day"][rv] + P["lag"][rv])
    add(P["loan"][rv], "reversal", P["amt"][rv], P["prin"][rv], P["intr"][rv], rev_day, rev_booked,
        np.full(len(rv), 23 * 3600 + 1800), rev_of=pay_row0 + rv)
    again = rev_booked + rng.integers(1, 4, len(rv))  # the borrower pays again after the reversal
    add(P["loan"][rv], "repayment", P["amt"][rv], P["prin"][rv], P["intr"][rv], again, again,
        rng.integers(10 * 3600, 20 * 3600, len(rv)))
    W = b["waivers"]
    add(W["loan"], "waiver", W["amt"], zero(len(W["loan"])), W["amt"], W["day"], W["day"],
        np.full(len(W["loan"]), 15 * 3600))
    WO = b["writeoffs"]
    add(WO["loan"], "write_off", WO["amt"], WO["amt"], zero(len(WO["loan"])), WO["day"], WO["day"],
        np.full(len(WO["loan"]), 17 * 3600))
    R = b["recoveries"]
    add(R["loan"], "recovery", R["amt"], R["amt"], zero(len(R["loan"])), R["day"], R["day"],
        np.full(len(R["loan"]), 16 * 3600))
    cat = {c: np.concatenate(v) for c, v in rows.items()}
    end_day = _days(end)
    keep = cat["booked"] <= end_day
    order = np.lexsort((np.arange(len(cat["loan"])), cat["sec"], cat["booked"]))
    order = order[keep[order]]
    txn_no = np.empty(len(cat["loan"]), np.int64)
    txn_no[order] = np.arange(1, len(order) + 1)
    rev_of = cat["rev_of"]
    fee = np.zeros(len(order), np.int64)
    transactions = {
        "txn_id": Lazy(_ids("T", 10), txn_no[order]), "loan_id": Lazy(_ids("L", 8), cat["loan"][order] + 1),
        "txn_type": cat["type"][order],
        "amount": _money(cat["amt"][order]), "principal_portion": _money(cat["prin"][order]),
        "interest_portion": _money(cat["intr"][order]), "fee_portion": _money(fee),
        "value_date": Lazy(_dates, cat["value"][order]),
        "booked_at": Lazy(_stamps, cat["booked"][order], cat["sec"][order]),
        "reverses_txn_id": Lazy(_ids("T", 10), np.where(rev_of[order] >= 0, txn_no[np.maximum(rev_of[order], 0)], -1)),
        "payment_id": Lazy(_ids("PAY", 9), cat["pay_id"][order]), "_known": cat["booked"][order],
    }

    # gateway: succeeded payments on their value date, refunds later, failed debits in arrears
    g_loan, g_pid, g_amt, g_status, g_channel, g_day, g_init, g_settled, g_reason = [], [], [], [], [], [], [], [], []
    gw = np.flatnonzero(P["gateway"])
    init = np.maximum(P["hour"][gw] - rng.integers(600, 7200, len(gw)), 0)
    chan = np.where(rng.random(len(gw)) < 0.5, "bank_card_debit",
                    np.array(PAY_CHANNELS, dtype=object)[rng.integers(0, 4, len(gw))])
    for arrays, vals in ((g_loan, P["loan"][gw]), (g_pid, pay_ids[gw]), (g_amt, P["amt"][gw]),
                         (g_status, np.full(len(gw), "succeeded", dtype=object)), (g_channel, chan),
                         (g_day, P["day"][gw]), (g_init, P["day"][gw] * 86400 + init),
                         (g_settled, P["day"][gw] * 86400 + init + 900), (g_reason, np.full(len(gw), None, object))):
        arrays.append(vals)
    refund = np.flatnonzero(P["refund"])
    rday = rev_day[np.searchsorted(rv, refund)]
    rinit = P["day"][refund] * 86400 + np.maximum(P["hour"][refund] - 3600, 0)
    for arrays, vals in ((g_loan, P["loan"][refund]), (g_pid, pay_ids[refund]), (g_amt, P["amt"][refund]),
                         (g_status, np.full(len(refund), "refunded", dtype=object)),
                         (g_channel, np.full(len(refund), "bank_card_debit", dtype=object)),
                         (g_day, rday), (g_init, rinit), (g_settled, rday * 86400 + 11 * 3600),
                         (g_reason, np.full(len(refund), None, object))):
        arrays.append(vals)
    sp_loan, sp_from, sp_to = b["spells"]
    attempts = np.array([0, 1, 2, 4, 7, 10, 14, 21])
    a_loan = np.repeat(sp_loan, len(attempts))
    a_day = np.repeat(sp_from, len(attempts)) + np.tile(attempts, len(sp_loan))
    ok = (a_day < np.repeat(sp_to, len(attempts))) & (a_day <= end_day) & (rng.random(len(a_day)) < 0.8)
    a_loan, a_day = a_loan[ok], a_day[ok]
    fid = -np.arange(1, len(a_loan) + 1)
    for arrays, vals in ((g_loan, a_loan), (g_pid, fid), (g_amt, np.maximum(L["principal"][a_loan] // L["term"][a_loan], 100)),
                         (g_status, np.full(len(a_loan), "failed", dtype=object)),
                         (g_channel, np.full(len(a_loan), "bank_card_debit", dtype=object)),
                         (g_day, a_day), (g_init, a_day * 86400 + rng.integers(5 * 3600, 7 * 3600, len(a_day))),
                         (g_settled, np.full(len(a_loan), -1, np.int64)),
                         (g_reason, np.array(FAILURE_REASONS, dtype=object)[
                             rng.choice(5, len(a_loan), p=[0.8, 0.05, 0.05, 0.05, 0.05])])):
        arrays.append(vals)
    G = {k2: np.concatenate(v) for k2, v in zip(
        ("loan", "pid", "amt", "status", "channel", "day", "init", "settled", "reason"),
        (g_loan, g_pid, g_amt, g_status, g_channel, g_day, g_init, g_settled, g_reason))}
    gk = G["day"] <= end_day
    G = {k2: v[gk] for k2, v in G.items()}
    go = np.lexsort((G["init"], G["day"]))
    G = {k2: v[go] for k2, v in G.items()}

    # ---- collection actions from delinquency spells -------------------------------------------
    dnc_loan = (C["dnc"][L["cust"]] == 1)
    offsets = np.array([1, 2, 3, 5, 8, 11, 15, 20, 25, 30, 40, 65, 80, 95])
    kinds = np.array(["sms", "app_push", "sms", "call", "call", "call", "call", "call", "call", "call", "call",
                      "field_visit", "field_visit", "legal_letter"], dtype=object)
    c_loan = np.repeat(sp_loan, len(offsets))
    c_day = np.repeat(sp_from, len(offsets)) + np.tile(offsets, len(sp_loan))
    c_kind = np.tile(kinds, len(sp_loan))
    long_wo = np.isin(c_loan, WO["loan"])  # long arrears: visits and letters happen until write-off
    okc = ((c_day < np.repeat(sp_to, len(offsets))) | (long_wo & (c_day < L["closed_on"][c_loan]))) \
        & (c_day <= end_day) & ~dnc_loan[c_loan] & (rng.random(len(c_day)) < 0.85)
    c_loan, c_day, c_kind = c_loan[okc], c_day[okc], c_kind[okc]
    best = C["best_hour"][L["cust"][c_loan]]
    hour = np.where(rng.random(len(c_loan)) < 0.45, best, rng.integers(7, 22, len(c_loan)))
    is_person = np.isin(c_kind, ["call", "field_visit"])
    p_contact = np.where(hour == best, 0.6, 0.22)
    u = rng.random(len(c_loan))
    outcome = np.where(~is_person, "delivered",
              np.where(u < p_contact * 0.45, "promise_to_pay",
              np.where(u < p_contact * 0.85, "contacted",
              np.where(u < p_contact * 0.95, "refused",
              np.where(u < p_contact, "dispute",
              np.where(u < p_contact + 0.05, "wrong_number", "no_answer")))))).astype(object)
    ptp = outcome == "promise_to_pay"
    agent = np.where(is_person, rng.integers(1, 41, len(c_loan)), -1)
    c_sec = hour * 3600 + rng.integers(0, 3600, len(c_loan))
    ao = np.lexsort((c_sec, c_day))
    promised = np.where(ptp, np.maximum(L["principal"][c_loan] // L["term"][c_loan], 100), 0)
    actions = {
        "action_id": Lazy(_ids("A", 9), np.arange(1, len(ao) + 1)),
        "loan_id": Lazy(_ids("L", 8), c_loan[ao] + 1), "action_at": Lazy(_stamps, c_day[ao], c_sec[ao]),
        "channel": c_kind[ao], "agent_id": Lazy(_ids("AG", 3), agent[ao]), "outcome": outcome[ao],
        "promised_amount": np.where(ptp[ao], _money(promised[ao]), None),
        "promised_date": Lazy(_dates, np.where(ptp[ao], c_day[ao] + rng.integers(1, 8, len(ao)), -1)),
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
    closed = (loans["_closed_on"] >= 0) & (loans["_closed_on"] <= until)
    status = np.where(closed, np.where(loans["_closed_as"] == 2, "written_off", "settled"), "active").astype(object)
    changed = np.where(closed, _date_str(np.maximum(loans["_closed_on"], 0)), None)
    updated = np.where(closed, _ts_str(np.maximum(loans["_closed_on"], 0), np.full(len(status), 20 * 3600)),
                       _ts_str(loans["_known"], loans["_dsec"]))
    return status, changed, updated


def _customer_state(cust: dict, until: int):
    flipped = (cust["_flip_day"] >= 0) & (cust["_flip_day"] <= until)
    dnc = np.where(flipped, 1, cust["do_not_contact"])
    updated = np.where(flipped, _ts_str(np.maximum(cust["_flip_day"], 0), cust["_flip_sec"]), cust["created_at"])
    return dnc, updated


def _settlement_files(gw: dict, start: int, until: int, end: int) -> dict[str, bytes]:
    """Files delivered by the end of `until`. One day's file arrives 3 days late, another is
    delivered first with a line missing and corrected the next day."""
    days = np.arange(start, min(until, end) + 1)
    late_day = start + 40
    redelivered_day = start + 55
    d_sorted = gw["_day"]  # rows are sorted by day
    files = {}
    for d in days:
        if d == late_day and until < d + 3:
            continue
        lo, hi = np.searchsorted(d_sorted, d), np.searchsorted(d_sorted, d, side="right")
        if d == redelivered_day and until == d and hi > lo:
            hi -= 1  # first delivery misses its last line
        lines = [SETTLEMENT_HEADER]
        sl = slice(lo, hi)
        pids = [f"PAY{v:09d}" if v > 0 else f"DBT{-v:09d}" for v in gw["pid"][sl].tolist()]
        init = _stamps(gw["init"][sl] // 86400, gw["init"][sl] % 86400)
        settled = gw["settled"][sl]
        settled_text = _stamps(np.maximum(settled, 0) // 86400, np.maximum(settled, 0) % 86400)
        for j, i in enumerate(range(lo, hi)):
            lines.append(",".join([pids[j], f"L{gw['loan'][i] + 1:08d}", f"{gw['amount'][i]:.2f}", "CNY",
                                   gw["status"][i], gw["channel"][i], init[j],
                                   settled_text[j] if settled[j] >= 0 else "", gw["reason"][i] or ""]) + "\n")
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
            db_path.unlink()
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
            for table, col in INDEXES:
                con.execute(f"CREATE INDEX ix_{table}_{col} ON {table} ({col})")
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
        counts["customers"] = int(m.sum())

        ln = t["loans"]
        status, changed_on, updated = _loan_status(ln, u)
        ln_now = dict(ln, status=status, status_changed_on=changed_on, updated_at=updated)
        lcols = ["loan_id", "customer_id", "product_id", "principal", "annual_rate", "term_months", "disbursed_on",
                 "channel", "status", "status_changed_on", "updated_at"]
        m = new(ln)
        con.executemany(f"INSERT INTO loans VALUES ({','.join('?' * 11)})", _rows(ln_now, lcols, m))
        if previous is not None:
            moved = ~m & (ln["_known"] <= u) & (ln["_closed_on"] > lo) & (ln["_closed_on"] <= u)
            con.executemany("UPDATE loans SET status = ?, status_changed_on = ?, updated_at = ? WHERE loan_id = ?",
                            _rows(ln_now, ["status", "status_changed_on", "updated_at", "loan_id"], moved))
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
