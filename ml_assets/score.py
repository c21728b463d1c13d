"""Scoring loans with a stored model version, with the reasons behind each score."""

import numpy as np
import pandas as pd

from .features import phrase
from .priority import PriorityPolicy, risk_tier
from .train import RiskModel

TOP_REASONS = 3
MIN_LIFT = 1.2  # a feature is a reason when its bin's event rate is 20% above the book's


def reasons(model: RiskModel, frame: pd.DataFrame, top: int = TOP_REASONS) -> list[str]:
    """The features whose training event rate most exceeds the base rate, in a collector's words."""
    x = model.prepared(frame)
    names = list(model.reason_bins)
    lifts = np.ones((len(x), len(names)))
    for j, c in enumerate(names):
        kind, keys, rates = model.reason_bins[c]
        rates = np.asarray(rates, dtype=float)
        if kind == "numeric":
            v = x[c].to_numpy()
            idx = np.clip(np.searchsorted(np.asarray(keys), v, side="right") - 1, 0, len(keys) - 1)
            lift = rates[idx] / model.base_rate
            lift[np.isnan(v)] = 1.0
        else:
            lookup = dict(zip(keys, rates))
            lift = x[c].map(lambda k: lookup.get(k, model.base_rate)).to_numpy(dtype=float) / model.base_rate
        lifts[:, j] = lift
    order = np.argsort(-lifts, axis=1, kind="stable")[:, :top]
    picked = np.take_along_axis(lifts, order, axis=1) >= MIN_LIFT  # a prefix of each row: lifts are sorted
    values = x[names].to_numpy(dtype=object)
    # Phrase each distinct (feature, value) once: a million rows share few distinct phrases.
    text = np.full(len(x), "", dtype=object)
    for r in range(order.shape[1]):
        part = np.full(len(x), "", dtype=object)
        for j in np.unique(order[picked[:, r], r]):
            rows = picked[:, r] & (order[:, r] == j)
            codes, distinct = pd.factorize(pd.Series(values[rows, j], dtype=object), use_na_sentinel=False)
            part[rows] = np.array([phrase(names[j], v) for v in distinct], dtype=object)[codes]
        text = np.where(~picked[:, r], text, part if r == 0 else text + "; " + part)
    return np.where(picked[:, 0], text, "no feature stands out: risk near the book's average").tolist()


def score(model: RiskModel, version: str, frame: pd.DataFrame, policy: PriorityPolicy) -> pd.DataFrame:
    p = model.predict(frame)
    out = pd.DataFrame({"loan_id": frame["loan_id"].to_numpy(), "risk_score": p.astype(float)})
    out["risk_tier"] = risk_tier(out["risk_score"], policy).to_numpy()
    out["model_version"] = version
    out["reasons"] = reasons(model, frame)
    return out
