"""A simulated consumer-lending book: every loan's lifecycle, vectorised across loans.

Money is integer cents and dates are integer days since 1970-01-01 until the
writer formats them. Each event carries the day it becomes visible in the
source (`known`), so the writer can show the source as it looked on any day.
Deterministic by seed.
"""

from dataclasses import dataclass

import numpy as np

PRODUCTS = [  # product_id, name, type, term, annual rate, monthly fee (cents), principal range (yuan)
    ("P_CASH12", "Cash loan 12 months", "cash_loan", 12, 0.24, 0, (2000, 50000)),
    ("P_CASH24", "Cash loan 24 months", "cash_loan", 24, 0.18, 0, (10000, 80000)),
    ("P_INST6", "Installment 6 months", "consumer_installment", 6, 0.15, 500, (1000, 15000)),
]
PROVINCES = ["Guangdong", "Jiangsu", "Zhejiang", "Shandong", "Henan", "Sichuan", "Hubei", "Hunan", "Fujian",
             "Beijing", "Shanghai", "Hebei"]
PROVINCE_RISK = np.array([0.0, -0.2, -0.25, 0.05, 0.25, 0.15, 0.05, 0.1, -0.1, -0.3, -0.35, 0.2])
EMPLOYMENT = ["salaried", "self_employed", "student", "retired", "unemployed", "other"]
EMPLOYMENT_P = [0.58, 0.2, 0.07, 0.05, 0.04, 0.06]
EMPLOYMENT_RISK = np.array([-0.3, 0.1, 0.5, -0.2, 1.1, 0.3])
CHANNELS = ["app", "partner", "branch"]
CHANNEL_RISK = np.array([0.15, 0.35, -0.4])


@dataclass
class Events:
    """Columns of one event table; `known` = day the row becomes visible in the source."""

    cols: dict

    def __len__(self):
        return len(next(iter(self.cols.values())))


def _add_months(day: np.ndarray, k: np.ndarray) -> np.ndarray:
    """day + k months, clamped to the month's end (Jan 31 + 1 month = Feb 28/29)."""
    d = day.astype("datetime64[D]")
    month = d.astype("datetime64[M]")
    dom = (d - month.astype("datetime64[D]")).astype(np.int64)
    target = month + k
    last = ((target + 1).astype("datetime64[D]") - 1).astype(np.int64)
    return np.minimum(target.astype("datetime64[D]").astype(np.int64) + dom, last)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def simulate_book(n_loans: int, start: int, end: int, seed: int) -> dict:
    rng = np.random.Generator(np.random.PCG64(seed))
    n = n_loans
    # --- customers -------------------------------------------------------------------------
    n_cust = max(1, int(n * 0.85))
    cust_of_loan = rng.permutation(
        np.concatenate([np.arange(min(n, n_cust)), rng.integers(0, n_cust, max(0, n - n_cust))]))
    # number customers in the order they first borrow (loans are numbered in disbursement order)
    _, first_idx = np.unique(cust_of_loan, return_index=True)
    renumber = np.empty(n_cust, np.int64)
    renumber[np.argsort(first_idx)] = np.arange(n_cust)
    cust_of_loan = renumber[cust_of_loan]
    c_age = rng.integers(20, 66, n_cust)
    c_employment = rng.choice(len(EMPLOYMENT), n_cust, p=EMPLOYMENT_P)
    c_employment[c_age >= 60] = np.where(rng.random((c_age >= 60).sum()) < 0.6, 3, c_employment[c_age >= 60])
    c_income = np.round(rng.lognormal(8.9, 0.55, n_cust) * np.where(c_employment == 2, 0.3, 1.0), -1)
    c_income_missing = rng.random(n_cust) < 0.05
    c_province = rng.choice(len(PROVINCES), n_cust)
    c_province_missing = rng.random(n_cust) < 0.02
    c_hidden = rng.normal(0, 1, n_cust)
    c_dnc = (rng.random(n_cust) < 0.015).astype(np.int64)
    c_best_hour = rng.choice([12, 13, 18, 19, 20], n_cust)  # when this borrower answers the phone

    # --- loans -------------------------------------------------------------------------------
    span = max(end - start, 1)
    disbursed = start + np.floor(span * rng.random(n) ** 0.8).astype(np.int64)  # the book grows
    disbursed.sort()
    channel = rng.choice(3, n, p=[0.55, 0.3, 0.15])
    product = np.where(channel == 1, rng.choice(3, n, p=[0.3, 0.1, 0.6]), rng.choice(3, n, p=[0.55, 0.3, 0.15]))
    term = np.array([p[3] for p in PRODUCTS])[product]
    rate = np.array([p[4] for p in PRODUCTS])[product]
    fee = np.array([p[5] for p in PRODUCTS])[product]
    lo = np.array([p[6][0] for p in PRODUCTS])[product]
    hi = np.array([p[6][1] for p in PRODUCTS])[product]
    principal = (np.round((lo + (hi - lo) * rng.random(n) ** 1.6) / 100) * 100).astype(np.int64) * 100  # cents
    cust = cust_of_loan
    age = c_age[cust]
    income = np.where(c_income_missing[cust], 6000.0, c_income[cust])
    burden = principal / 100 / term / np.maximum(income, 500)
    base_logit = (-4.3 + EMPLOYMENT_RISK[c_employment[cust]] + CHANNEL_RISK[channel] + PROVINCE_RISK[c_province[cust]]
                  + 0.02 * np.abs(age - 40) - 0.012 * (age - 40) + 1.6 * np.minimum(burden, 1.5)
                  + 0.25 * (product == 0) + 0.9 * c_hidden[cust] + rng.normal(0, 0.5, n))

    # --- schedule ----------------------------------------------------------------------------
    kmax = int(term.max())
    r = rate / 12
    payment = principal * r / (1 - (1 + r) ** -term)
    # loan x installment matrices in int32 (cents and days fit; halves the memory of a 1M-loan book)
    due = np.full((n, kmax), -1, np.int32)
    p_due = np.zeros((n, kmax), np.int32)
    i_due = np.zeros((n, kmax), np.int32)
    f_due = np.zeros((n, kmax), np.int32)
    remaining = principal.astype(np.float64)
    for k in range(kmax):
        live = k < term
        interest = np.round(remaining * r)
        princ = np.round(payment - interest)
        last = k == term - 1
        princ = np.where(last, remaining, princ)
        due[live, k] = _add_months(disbursed[live], np.full(live.sum(), k + 1))
        p_due[live, k] = princ[live]
        i_due[live, k] = interest[live]
        f_due[live, k] = fee[live]
        remaining = np.where(live, remaining - princ, remaining)
    inst_due = p_due + i_due + f_due
    cum_due = np.cumsum(inst_due, axis=1, dtype=np.int32)
    cum_principal = np.cumsum(p_due, axis=1, dtype=np.int32)

    # --- behaviour, installment by installment ------------------------------------------------
    cum_fee = np.cumsum(f_due, axis=1, dtype=np.int32)
    cum_nonprin = cum_due - cum_principal
    rows_n = np.arange(n)
    state = np.zeros(n, np.int64)  # 0 good, 1 stressed, 2 defaulted, 3 closed
    paid = np.zeros(n, np.int64)  # cents applied so far (repayments + waivers), oldest installment first
    att_prin = np.zeros(n, np.int64)  # principal / fee attributed to ledger rows so far
    att_fee = np.zeros(n, np.int64)
    last_pay = disbursed.copy()
    closed_on = np.full(n, -1, np.int64)
    closed_as = np.zeros(n, np.int64)  # 1 settled, 2 written off
    prepaid = np.zeros(n, bool)
    pay_cols = {c: [] for c in ("loan", "day", "amt", "prin", "intr", "fee", "spell")}
    wav_cols = {c: [] for c in ("loan", "day", "amt", "intr", "fee")}
    # delinquency spells (loan, first unpaid due day, end day, paying day or -1, amount paid then, overdue at start)
    spell_cols = {c: [] for c in ("loan", "start", "stop", "pay_day", "pay_amt", "overdue", "kind")}
    n_spells = [0]

    def covered(loans, cum_paid):
        """(fee, principal) covered when `cum_paid` cents are applied oldest installment first,
        fee then interest then principal within an installment."""
        cd = cum_due[loans]
        j = (cd <= cum_paid[:, None]).sum(axis=1)  # installments fully paid
        jj = np.minimum(j, kmax - 1)
        jm = np.maximum(j - 1, 0)
        prev_cum = np.where(j > 0, cd[np.arange(len(loans)), jm], 0)
        prev_prin = np.where(j > 0, cum_principal[loans, jm], 0)
        prev_fee = np.where(j > 0, cum_fee[loans, jm], 0)
        into = cum_paid - prev_cum
        fee_part = np.clip(into, 0, f_due[loans, jj])
        prin_part = np.clip(into - f_due[loans, jj] - i_due[loans, jj], 0, p_due[loans, jj])
        full = j >= term[loans]
        return (np.where(full, cum_fee[loans, term[loans] - 1], prev_fee + fee_part),
                np.where(full, principal[loans], prev_prin + prin_part))

    def add_spell(loans, start_day, stop, pay_day, pay_amt, overdue, kind):
        pay_cols_idx = np.arange(n_spells[0], n_spells[0] + len(loans))
        n_spells[0] += len(loans)
        for c, v in zip(spell_cols, (loans, start_day, stop, pay_day, pay_amt, overdue, np.full(len(loans), kind))):
            spell_cols[c].append(np.asarray(v, np.int64))
        return pay_cols_idx

    def pay(loans, day, amount, spell=None, principal_portion=None):
        if len(loans) == 0:
            return
        paid[loans] += amount
        fee_t, prin_t = covered(loans, paid[loans])
        if principal_portion is None:
            prin = np.clip(prin_t - att_prin[loans], 0, amount)
        else:
            prin = principal_portion
        fee_p = np.clip(fee_t - att_fee[loans], 0, amount - prin)
        att_prin[loans] += prin
        att_fee[loans] += fee_p
        for c, v in zip(pay_cols, (loans, day, amount, prin, amount - prin - fee_p, fee_p,
                                   np.full(len(loans), -1) if spell is None else spell)):
            pay_cols[c].append(np.asarray(v, np.int64))
        last_pay[loans] = np.maximum(last_pay[loans], day)

    month_of = lambda d: d.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12  # noqa: E731
    for k in range(kmax):
        active = (k < term) & (state != 3) & (due[:, k] >= 0) & (due[:, k] <= end)
        idx = np.flatnonzero(active)
        if len(idx) == 0:
            continue
        d_k = due[idx, k]
        # macro factor: stress around Chinese New Year (Jan/Feb), a milder summer bump
        mo = month_of(d_k)
        macro = np.where(np.isin(mo, [0, 1]), 0.45, np.where(np.isin(mo, [6, 7]), 0.15, 0.0))
        u = rng.random(len(idx))
        s = state[idx]
        p_stress = _sigmoid(base_logit[idx] + macro)
        to_stressed = (s == 0) & (u < p_stress)
        cure = (s == 1) & (u < 0.33)
        default = (s == 1) & (u > 1 - _sigmoid(base_logit[idx] + 1.9 + macro))
        s = np.where(to_stressed, 1, s)
        s = np.where(cure, 0, s)
        s = np.where(default, 2, s)
        state[idx] = s
        overdue_now = np.maximum(cum_due[idx, k] - paid[idx], 0)

        # prepayment / early full settlement by good borrowers
        pre = (s == 0) & (k >= 1) & (rng.random(len(idx)) < 0.02) & (k < term[idx] - 1)
        if pre.any():
            li = idx[pre]
            day = np.maximum(due[li, k] - rng.integers(1, 20, len(li)), last_pay[li] + 1)
            outstanding = principal[li] - att_prin[li]
            nonprin = np.maximum(cum_nonprin[li, k] - (paid[li] - att_prin[li]), 0)
            ok = day <= end
            li, day = li[ok], day[ok]
            pay(li, day, outstanding[ok] + nonprin[ok], principal_portion=outstanding[ok])
            paid[li] = cum_due[li, term[li] - 1]  # nothing further is due
            state[li] = 3
            closed_on[li] = day
            closed_as[li] = 1
            prepaid[li] = True

        good = (s == 0) & ~pre
        li = idx[good]
        if len(li):
            offset = np.where(rng.random(len(li)) < 0.45, 0, -rng.integers(1, 6, len(li)))
            late = rng.random(len(li)) < 0.08
            offset = np.where(late, rng.integers(1, 6, len(li)), offset)
            day = np.maximum(due[li, k] + offset, last_pay[li] + 1)
            amount = cum_due[li, k] - paid[li]  # catches up any arrears too (one payment, two installments)
            ok = (amount > 0) & (day <= end)
            lt = late & ok
            sp = np.full(len(li), -1)
            sp[lt] = add_spell(li[lt], due[li[lt], k], day[lt], day[lt], amount[lt], overdue_now[good][lt], 0)
            pay(li[ok], day[ok], amount[ok], spell=sp[ok])
        stressed = s == 1
        li = idx[stressed]
        if len(li):
            u2 = rng.random(len(li))
            late_full = u2 < 0.45
            partial = (u2 >= 0.45) & (u2 < 0.72)  # the rest miss this month entirely
            day = np.maximum(due[li, k] + rng.integers(6, 26, len(li)), last_pay[li] + 1)
            owed = cum_due[li, k] - paid[li]
            amount = np.where(late_full, owed, np.round(owed * rng.uniform(0.3, 0.7, len(li))).astype(np.int64))
            ok = (late_full | partial) & (amount > 0) & (day <= end)
            stop = np.where(ok & late_full, day, np.minimum(due[li, k] + 30, end))
            sp = add_spell(li, due[li, k], stop, np.where(ok, day, -1), np.where(ok, amount, 0),
                           overdue_now[stressed], 1)
            pay(li[ok], day[ok], amount[ok], spell=sp[ok])
            # waivers of the unpaid fee and interest of the oldest unpaid installment, for some strugglers
            w = (rng.random(len(li)) < 0.06) & (due[li, k] + 20 <= end)
            wl = li[w]
            if len(wl):
                cd = cum_due[wl]
                pos = paid[wl]
                j_un = np.minimum((cd <= pos[:, None]).sum(axis=1), term[wl] - 1)
                prev = np.where(j_un > 0, cd[np.arange(len(wl)), np.maximum(j_un - 1, 0)], 0)
                into = pos - prev
                fee_left = np.maximum(f_due[wl, j_un] - into, 0)
                nonprin_left = np.maximum(f_due[wl, j_un] + i_due[wl, j_un] - into, 0)
                wamt = np.round(nonprin_left * rng.uniform(0.5, 1.0, len(wl))).astype(np.int64)
                wamt = np.where(wamt < 100, nonprin_left, wamt)
                wfee = np.minimum(fee_left, wamt)
                ok = wamt > 0
                wl, wamt, wfee = wl[ok], wamt[ok], wfee[ok]
                for c, v in zip(wav_cols, (wl, np.maximum(due[wl, k] + 20, last_pay[wl] + 1), wamt, wamt - wfee,
                                           wfee)):
                    wav_cols[c].append(v)
                paid[wl] += wamt
                att_fee[wl] += wfee
        dflt = (s == 2) & (state[idx] == 2)
        li = idx[dflt]
        if len(li):  # the borrower stops paying; one long spell from the first default
            first = default[dflt]
            add_spell(li[first], due[li[first], k], np.full(first.sum(), end), np.full(first.sum(), -1),
                      np.zeros(first.sum()), overdue_now[dflt][first], 2)
        # normal completion
        done = (k == term[idx] - 1) & (paid[idx] >= cum_due[idx, k]) & (state[idx] != 3)
        if done.any():
            li = idx[done]
            state[li] = 3
            closed_on[li] = last_pay[li]
            closed_as[li] = 1
    # borrowers still in arrears when their term is over stop paying: they go to write-off
    state[(state == 1) & (paid < cum_due[rows_n, term - 1] - 100)] = 2

    # write-offs at about 180 dpd, then recoveries
    unpaid_first = np.full(n, -1, np.int64)
    for k in range(kmax):
        cand = (unpaid_first < 0) & (k < term) & (paid < cum_due[:, k] - 100) & (due[:, k] >= 0)
        unpaid_first[cand] = due[cand, k]
    wo = (state == 2) & (unpaid_first >= 0)
    wo_day = unpaid_first + 180 + rng.integers(1, 12, n)
    wo &= wo_day <= end
    wo_loans = np.flatnonzero(wo)
    wo_amount = principal[wo_loans] - att_prin[wo_loans]
    keep = wo_amount > 0
    wo_loans, wo_amount = wo_loans[keep], wo_amount[keep]
    closed_on[wo_loans] = wo_day[wo_loans]
    closed_as[wo_loans] = 2
    rec = wo_loans[rng.random(len(wo_loans)) < 0.35]
    rec_day = closed_on[rec] + rng.integers(20, 150, len(rec))
    rec_amt = np.round(principal[rec] * rng.uniform(0.03, 0.15, len(rec))).astype(np.int64)
    rk = rec_day <= end
    rec, rec_day, rec_amt = rec[rk], rec_day[rk], rec_amt[rk]

    # --- ledger ------------------------------------------------------------------------------
    cat = lambda cols: {k: (np.concatenate(v) if v else np.zeros(0, np.int64)) for k, v in cols.items()}  # noqa: E731
    P = cat(pay_cols)
    n_pay = len(P["loan"])
    closing = (closed_as[P["loan"]] == 1) & (P["day"] == closed_on[P["loan"]])
    hour = rng.integers(8 * 3600, 22 * 3600, n_pay)
    via_gateway = rng.random(n_pay) < 0.9  # the rest: counter and bank transfers booked by hand
    back = rng.random(n_pay) < 0.03  # back-dated bookings; the gateway posts within two days
    lag = np.where(back, np.where(via_gateway, rng.integers(1, 3, n_pay), rng.integers(1, 6, n_pay)), 0)
    # reversals (booking errors, refunds) hit repayments well before a loan's closing payment
    is_reversed = (rng.random(n_pay) < 0.005) & ~((closed_as[P["loan"]] == 1) & (P["day"] + 10 >= closed_on[P["loan"]]))
    is_refund = is_reversed & via_gateway & (rng.random(n_pay) < 0.5)
    # the day a settled loan's status changes: when its last money is booked
    status_day = closed_on.copy()
    cl = np.flatnonzero(closing)
    status_day[P["loan"][cl]] = P["day"][cl] + lag[cl]
    S = cat(spell_cols)
    return dict(
        n=n, n_cust=n_cust, start=start, end=end, rng=rng,
        customers=dict(age=c_age, employment=c_employment, income=c_income, income_missing=c_income_missing,
                       province=c_province, province_missing=c_province_missing, dnc=c_dnc, best_hour=c_best_hour),
        loans=dict(cust=cust, disbursed=disbursed, channel=channel, product=product, term=term, rate=rate,
                   principal=principal, closed_on=closed_on, closed_as=closed_as, status_day=status_day,
                   prepaid=prepaid, unpaid_first=unpaid_first, installment=inst_due[:, 0]),
        schedule=dict(due=due, p=p_due, i=i_due, f=f_due),
        payments=dict(P, hour=hour, lag=lag, gateway=via_gateway, reversed=is_reversed, refund=is_refund),
        waivers=cat(wav_cols), writeoffs=dict(loan=wo_loans, day=closed_on[wo_loans], amt=wo_amount),
        recoveries=dict(loan=rec, day=rec_day, amt=rec_amt), spells=S,
    )
