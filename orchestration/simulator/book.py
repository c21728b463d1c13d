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
    cust_of_loan = np.concatenate([np.arange(min(n, n_cust)), rng.integers(0, n_cust, max(0, n - n_cust))])
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
                  + 0.25 * (product == 0) + 0.75 * c_hidden[cust] + rng.normal(0, 0.35, n))

    # --- schedule ----------------------------------------------------------------------------
    kmax = int(term.max())
    r = rate / 12
    payment = principal * r / (1 - (1 + r) ** -term)
    due = np.full((n, kmax), -1, np.int64)
    p_due = np.zeros((n, kmax), np.int64)
    i_due = np.zeros((n, kmax), np.int64)
    f_due = np.zeros((n, kmax), np.int64)
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
    cum_due = np.cumsum(inst_due, axis=1)
    cum_principal = np.cumsum(p_due, axis=1)

    # --- behaviour, installment by installment ------------------------------------------------
    state = np.zeros(n, np.int64)  # 0 good, 1 stressed, 2 defaulted, 3 closed
    paid = np.zeros(n, np.int64)  # cents applied so far (repayments + waivers)
    last_pay = disbursed.copy()
    first_default_due = np.full(n, -1, np.int64)
    closed_on = np.full(n, -1, np.int64)
    closed_as = np.zeros(n, np.int64)  # 1 settled, 2 written off
    pay_loan, pay_day, pay_amt, pay_prin, pay_int = [], [], [], [], []
    wav_loan, wav_day, wav_amt = [], [], []
    late_spell = []  # (loan, from_day, to_day) delinquency spells, for actions and failed debits

    def principal_covered(loans, cum_paid):
        """Principal portion covered when `cum_paid` cents have been applied oldest first."""
        cd = cum_due[loans]
        j = (cd <= cum_paid[:, None]).sum(axis=1)  # installments fully paid
        jj = np.minimum(j, kmax - 1)
        prev_cum = np.where(j > 0, cd[np.arange(len(loans)), np.maximum(j - 1, 0)], 0)
        prev_prin = np.where(j > 0, cum_principal[loans, np.maximum(j - 1, 0)], 0)
        into = cum_paid - prev_cum - f_due[loans, jj] - i_due[loans, jj]
        part = np.clip(into, 0, p_due[loans, jj])
        return np.where(j >= term[loans], principal[loans], prev_prin + part)

    def pay(loans, day, amount, portion_principal=None):
        if len(loans) == 0:
            return
        before = principal_covered(loans, paid[loans])
        paid[loans] += amount
        after = principal_covered(loans, paid[loans])
        prin = after - before if portion_principal is None else portion_principal
        pay_loan.append(loans)
        pay_day.append(day)
        pay_amt.append(amount)
        pay_prin.append(prin)
        pay_int.append(amount - prin)
        last_pay[loans] = np.maximum(last_pay[loans], day)

    months = lambda d: ((d.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)) % 12)  # noqa: E731
    for k in range(kmax):
        active = (k < term) & (state != 3) & (due[:, k] >= 0) & (due[:, k] <= end)
        idx = np.flatnonzero(active)
        if len(idx) == 0:
            continue
        d_k = due[idx, k]
        # seasonal stress: Chinese New Year (Jan/Feb) and the summer
        macro = np.where(np.isin(months(d_k), [0, 1]), 0.45, np.where(np.isin(months(d_k), [6, 7]), 0.15, 0.0))
        u = rng.random(len(idx))
        s = state[idx]
        p_stress = _sigmoid(base_logit[idx] + macro)
        to_stressed = (s == 0) & (u < p_stress)
        cure = (s == 1) & (u < 0.33)
        default = (s == 1) & (u > 1 - _sigmoid(base_logit[idx] + 1.9))
        s = np.where(to_stressed, 1, s)
        s = np.where(cure, 0, s)
        s = np.where(default, 2, s)
        state[idx] = s

        # prepayment by good borrowers
        pre = (s == 0) & (k >= 2) & (rng.random(len(idx)) < 0.018) & (k < term[idx] - 1)
        if pre.any():
            li = idx[pre]
            day = due[li, k] - rng.integers(1, 20, len(li))
            day = np.maximum(day, last_pay[li] + 1)
            outstanding = principal[li] - principal_covered(li, paid[li])
            interest_now = i_due[li, k]
            pay(li, day, outstanding + interest_now + np.maximum(cum_due[li, k - 1] - paid[li], 0), outstanding)
            paid[li] = cum_due[li, term[li] - 1]  # nothing further is due
            state[li] = 3
            closed_on[li] = day
            closed_as[li] = 1

        good = (s == 0) & ~pre
        li = idx[good]
        if len(li):
            offset = np.where(rng.random(len(li)) < 0.45, 0, -rng.integers(1, 6, len(li)))
            late = rng.random(len(li)) < 0.09
            offset = np.where(late, rng.integers(1, 6, len(li)), offset)
            day = np.maximum(due[li, k] + offset, last_pay[li] + 1)
            amount = cum_due[li, k] - paid[li]  # catches up any arrears too
            ok = (amount > 0) & (day <= end)
            late_spell.append((li[late & ok], due[li[late & ok], k], day[late & ok]))
            pay(li[ok], day[ok], amount[ok])
        stressed = s == 1
        li = idx[stressed]
        if len(li):
            u2 = rng.random(len(li))
            late_full = u2 < 0.45
            partial = (u2 >= 0.45) & (u2 < 0.72)
            # missed: nothing this month
            day = due[li, k] + rng.integers(6, 26, len(li))
            day = np.maximum(day, last_pay[li] + 1)
            amount = np.where(late_full, cum_due[li, k] - paid[li],
                              np.round((cum_due[li, k] - paid[li]) * rng.uniform(0.3, 0.7, len(li))).astype(np.int64))
            ok = (late_full | partial) & (amount > 0) & (day <= end)
            spell_end = np.where(ok & late_full, day, np.minimum(due[li, k] + 35, end))
            late_spell.append((li, due[li, k], spell_end))
            pay(li[ok], day[ok], amount[ok])
            # waivers of fees/interest for some struggling borrowers
            w = (rng.random(len(li)) < 0.06) & (due[li, k] + 20 <= end)
            if w.any():
                wl = li[w]
                wamt = np.maximum(100, np.round(i_due[wl, k] * rng.uniform(0.3, 1.0, len(wl)))).astype(np.int64)
                wav_loan.append(wl)
                wav_day.append(np.maximum(due[wl, k] + 20, last_pay[wl] + 1))
                wav_amt.append(wamt)
                paid[wl] += wamt
        dflt = s == 2
        li = idx[dflt]
        if len(li):
            first_default_due[li] = np.where(first_default_due[li] < 0, due[li, k], first_default_due[li])
            late_spell.append((li, due[li, k], np.minimum(due[li, k] + 45, end)))
        # normal completion
        done = (k == term[idx] - 1) & (paid[idx] >= cum_due[idx, k]) & (state[idx] != 3)
        if done.any():
            li = idx[done]
            state[li] = 3
            closed_on[li] = last_pay[li]
            closed_as[li] = 1
    # borrowers still in arrears when their term is over stop paying: they go to write-off
    state[(state == 1) & (paid < cum_due[np.arange(n), term - 1] - 100)] = 2

    # write-offs at about 180 dpd, then recoveries
    unpaid_first = np.full(n, -1, np.int64)
    for k in range(kmax):
        cand = (unpaid_first < 0) & (k < term) & (paid < cum_due[:, k] - 100) & (due[:, k] >= 0)
        unpaid_first[cand] = due[cand, k]
    wo = (state == 2) & (unpaid_first >= 0)
    wo_day = unpaid_first + 180 + rng.integers(0, 12, n)
    wo &= wo_day <= end
    wo_loans = np.flatnonzero(wo)
    wo_amount = principal[wo_loans] - principal_covered(wo_loans, paid[wo_loans])
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
    P = {k: np.concatenate(v) if v else np.zeros(0, np.int64) for k, v in
         dict(loan=pay_loan, day=pay_day, amt=pay_amt, prin=pay_prin, intr=pay_int).items()}
    n_pay = len(P["loan"])
    hour = rng.integers(8 * 3600, 22 * 3600, n_pay)
    lag = np.where(rng.random(n_pay) < 0.03, rng.integers(1, 6, n_pay), np.where(rng.random(n_pay) < 0.05, 1, 0))
    via_gateway = rng.random(n_pay) < 0.9
    is_reversed = rng.random(n_pay) < 0.005
    is_refund = is_reversed & via_gateway & (rng.random(n_pay) < 0.5)
    W = {"loan": np.concatenate(wav_loan) if wav_loan else np.zeros(0, np.int64),
         "day": np.concatenate(wav_day) if wav_day else np.zeros(0, np.int64),
         "amt": np.concatenate(wav_amt) if wav_amt else np.zeros(0, np.int64)}
    spells = ([np.concatenate([s[i] for s in late_spell]) for i in range(3)] if late_spell
              else [np.zeros(0, np.int64)] * 3)
    return dict(
        n=n, n_cust=n_cust, start=start, end=end, rng=rng,
        customers=dict(age=c_age, employment=c_employment, income=c_income, income_missing=c_income_missing,
                       province=c_province, province_missing=c_province_missing, dnc=c_dnc, best_hour=c_best_hour),
        loans=dict(cust=cust, disbursed=disbursed, channel=channel, product=product, term=term, rate=rate,
                   principal=principal, closed_on=closed_on, closed_as=closed_as),
        schedule=dict(due=due, p=p_due, i=i_due, f=f_due),
        payments=dict(P, hour=hour, lag=lag, gateway=via_gateway, reversed=is_reversed, refund=is_refund),
        waivers=W, writeoffs=dict(loan=wo_loans, day=closed_on[wo_loans], amt=wo_amount),
        recoveries=dict(loan=rec, day=rec_day, amt=rec_amt), spells=spells,
    )
