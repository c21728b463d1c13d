"""How good and how stable the scores are: AUC, KS, Brier, calibration by band, PSI."""

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve

PSI_WARNING = 0.25


def ks_statistic(y: np.ndarray, p: np.ndarray) -> float:
    fpr, tpr, _ = roc_curve(y, p)
    return float(np.max(tpr - fpr))


def score_metrics(y, p) -> dict:
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    both = len(np.unique(y)) == 2
    return {
        "rows": int(len(y)),
        "event_rate": float(y.mean()) if len(y) else None,
        "auc": float(roc_auc_score(y, p)) if both else None,
        "ks": ks_statistic(y, p) if both else None,
        "brier": float(brier_score_loss(y, p)) if len(y) else None,
    }


def calibration_table(y, p, bands: int = 10) -> pd.DataFrame:
    """Predicted versus realized per score decile (band 1 = lowest scores)."""
    df = pd.DataFrame({"y": np.asarray(y, dtype=float), "p": np.asarray(p, dtype=float)})
    df["band"] = pd.qcut(df["p"].rank(method="first"), bands, labels=False) + 1
    t = df.groupby("band").agg(loans=("y", "size"), mean_predicted=("p", "mean"), realized=("y", "mean"),
                               min_score=("p", "min"), max_score=("p", "max")).reset_index()
    t["gap"] = t["mean_predicted"] - t["realized"]
    return t


def psi(expected, actual, bins: int = 10) -> float:
    """Population stability index of `actual` against `expected` on expected's quantile bins."""
    e = pd.Series(expected, dtype=float).dropna()
    a = pd.Series(actual, dtype=float).dropna()
    if e.empty or a.empty:
        return float("nan")
    edges = np.unique(np.quantile(e, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        return 0.0
    edges[0], edges[-1] = -np.inf, np.inf
    pe = np.histogram(e, edges)[0] / len(e)
    pa = np.histogram(a, edges)[0] / len(a)
    pe, pa = np.clip(pe, 1e-6, None), np.clip(pa, 1e-6, None)
    return float(np.sum((pa - pe) * np.log(pa / pe)))
