"""Scoring loans with a stored model version, with the reasons behind each score."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from .features import phrase
from .priority import PriorityPolicy, risk_tier
from .train import RiskModel

TOP_REASONS = 3
MIN_LIFT = 1.2  # a feature is a reason when its bin's event rate is 20% above the book's


def top_columns(values: np.ndarray, top: int) -> np.ndarray:
    """Per row, the indices of the `top` largest values, largest first, ties to the lower index, NaN
    last: the first `top` columns of a stable argsort of -values, at a fraction of its cost (a full
    sort of a million rows of 35 features took a second). Column by column: `values` is a
    column-major array of many rows and few columns."""
    n, k = values.shape
    work = np.where(np.isnan(values), -np.finfo(float).max, values)  # NaN below every number
    work = np.asfortranarray(work)
    rows = np.arange(n)
    order = np.empty((n, min(top, k)), dtype=np.intp)
    for r in range(order.shape[1]):
        best, best_at = work[:, 0].copy(), np.zeros(n, dtype=np.intp)
        for j in range(1, k):
            better = work[:, j] > best  # strictly: of equal values the lower index stays
            np.copyto(best, work[:, j], where=better)
            best_at[better] = j
        order[:, r] = best_at
        work[rows, best_at] = -np.inf  # taken
    return order


def reasons(model: RiskModel, frame: pd.DataFrame, top: int = TOP_REASONS, prepared: pd.DataFrame | None = None) -> list[str]:
    """The features whose training event rate most exceeds the base rate, in a collector's words
    (`prepared`: model.prepared(frame), when the caller has it already)."""
    x = model.prepared(frame) if prepared is None else prepared
    names = list(model.reason_bins)
    lifts = np.empty((len(x), len(names)), order="F")  # filled column by column
    for j, c in enumerate(names):
        kind, keys, rates = model.reason_bins[c]
        rates = np.asarray(rates, dtype=float)
        if kind == "numeric":
            v = x[c].to_numpy()
            idx = np.clip(np.searchsorted(np.asarray(keys), v, side="right") - 1, 0, len(keys) - 1)
            lift = rates[idx] / model.base_rate
            lift[np.isnan(v)] = 1.0
        else:
            pos = pd.Index(keys, dtype=object).get_indexer(x[c])  # -1: unseen
            rate = np.where(pos >= 0, rates[pos], np.nan)
            lift = np.where(np.isnan(rate), model.base_rate, rate) / model.base_rate
        lifts[:, j] = lift
    order = top_columns(lifts, top)
    picked = np.take_along_axis(lifts, order, axis=1) >= MIN_LIFT  # a prefix of each row: lifts are sorted
    # Phrase each distinct (feature, value) once and join each distinct combination once: a million
    # rows share few of either.
    phrases: list[str] = []
    ids = np.full(order.shape, -1, dtype=np.int64)
    for r in range(order.shape[1]):
        for j in np.unique(order[picked[:, r], r]):
            rows = picked[:, r] & (order[:, r] == j)
            codes, distinct = pd.factorize(x[names[j]][rows].astype(object), use_na_sentinel=False)
            ids[rows, r] = len(phrases) + codes
            phrases.extend(phrase(names[j], v) for v in distinct)
    # one integer per combination of phrase ids (-1 = none), then each distinct one joined once
    base = len(phrases) + 1
    key = np.zeros(len(x), dtype=np.int64)
    for r in range(order.shape[1]):
        key = key * base + (ids[:, r] + 1)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    texts = np.array(["; ".join(phrases[k] for k in ids[i] if k >= 0)
                      or "no feature stands out: risk near the book's average" for i in first], dtype=object)
    return texts[inverse].tolist()


def score(model: RiskModel, version: str, frame: pd.DataFrame, policy: PriorityPolicy) -> pd.DataFrame:
    x = model.prepared(frame)
    # The reasons do not depend on the score: they are worked out beside the prediction (both
    # mostly in numpy and OpenMP code that releases the GIL; at 1M loans 2 s and 3 s one after
    # the other). Both only read x.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="reasons") as pool:
        why = pool.submit(reasons, model, frame, prepared=x)
        p = model.predict_prepared(x)
        out = pd.DataFrame({"loan_id": frame["loan_id"].to_numpy(), "risk_score": p.astype(float)})
        out["risk_tier"] = risk_tier(out["risk_score"], policy).to_numpy()
        out["model_version"] = version
        out["reasons"] = why.result()
    return out
