"""Training the roll-forward model: a transparent scorecard against gradient boosting.

Both are fit on earlier snapshot dates and judged on a later, out-of-time
window; probabilities are calibrated (isotonic, cross-fitted). The better by
out-of-time AUC wins unless its calibration is clearly worse.
"""

import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import KBinsDiscretizer, OneHotEncoder, OrdinalEncoder
from threadpoolctl import threadpool_limits

from .fast_predict import predict_positive
from .features import CATEGORICAL, FEATURES, NUMERIC, prepare
from .monitor import calibration_table, score_metrics

# Bumped whenever fitting changes, so a new recipe on the same data never reuses a stored version name.
RECIPE = "scorecard+hgb250, isotonic on 3-fold out-of-fold predictions, single refit"

# A challenger whose mean |predicted - realized| per decile is this much worse loses even with a higher AUC.
CALIBRATION_MARGIN = 0.01


@dataclass
class RiskModel:
    """What is stored for a version: the fitted estimator and what scoring and monitoring need."""

    kind: str
    estimator: object
    features: list[str]
    base_rate: float
    reason_bins: dict = field(default_factory=dict)  # feature -> (edges or categories, event rates)
    training_scores: np.ndarray | None = None  # for PSI of the score
    training_features: dict = field(default_factory=dict)  # feature -> sample, for PSI of features
    numeric: list[str] = field(default_factory=lambda: list(NUMERIC))
    categorical: list[str] = field(default_factory=lambda: list(CATEGORICAL))

    def prepared(self, frame: pd.DataFrame) -> pd.DataFrame:
        return prepare(frame, self.numeric, self.categorical)[self.features]

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.predict_prepared(self.prepared(frame))

    def predict_prepared(self, x: pd.DataFrame) -> np.ndarray:
        """predict() on rows already through prepared() (scoring prepares a million rows once).
        A gradient-boosting champion takes the fast path of fast_predict (the same floats)."""
        threads = ml_threads(scoring=True)
        with threadpool_limits(threads):
            p = predict_positive(self.estimator, x, threads)
            return p if p is not None else self.estimator.predict_proba(x)[:, 1]


def ml_threads(scoring: bool = False) -> int:
    """OpenMP/BLAS threads (ARREARS_ML_THREADS, default 1 for fitting; scoring defaults to 2). On a shared
    machine gradient boosting fitting with oversubscribed OpenMP threads runs >10x slower than with one;
    scoring shares the cores with at most one other step of the daily run (measured at 1M loans: 2
    threads 3.3 s alone, 5.0-5.5 s beside a busy core, 1 thread 4.7-5.3 s either way), and a row's
    prediction does not depend on the thread count."""
    default = "2" if scoring else "1"
    return int(os.environ.get("ARREARS_ML_THREADS", default))


def scorecard(seed: int, numeric: list[str] = NUMERIC, categorical: list[str] = CATEGORICAL) -> Pipeline:
    binned = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                           KBinsDiscretizer(n_bins=6, encode="onehot", strategy="quantile", subsample=200_000,
                                            quantile_method="averaged_inverted_cdf", random_state=seed))
    pre = ColumnTransformer([
        ("num", binned, numeric),
        ("cat", OneHotEncoder(handle_unknown="ignore", min_frequency=20), categorical),
    ])
    return Pipeline([("bins", pre), ("lr", LogisticRegression(C=0.3, max_iter=2000))])


def gradient_boosting(seed: int, numeric: list[str] = NUMERIC, categorical: list[str] = CATEGORICAL) -> Pipeline:
    pre = ColumnTransformer([
        ("num", "passthrough", numeric),
        ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1),
         categorical),
    ])
    is_cat = [False] * len(numeric) + [True] * len(categorical)
    hgb = HistGradientBoostingClassifier(max_iter=250, learning_rate=0.06, max_leaf_nodes=31, min_samples_leaf=80,
                                         l2_regularization=1.0, categorical_features=is_cat, random_state=seed,
                                         early_stopping=True, validation_fraction=0.1, n_iter_no_change=15)
    return Pipeline([("enc", pre), ("hgb", hgb)])


def _reason_bins(x: pd.DataFrame, y: np.ndarray, numeric: list[str], categorical: list[str]) -> dict:
    """Event rate per quantile bin (numeric) or category, from training: the basis of reason codes."""
    out = {}
    for c in numeric:
        v = x[c].to_numpy()
        ok = ~np.isnan(v)
        if ok.sum() < 50:
            continue
        edges = np.unique(np.quantile(v[ok], np.linspace(0, 1, 11)))
        idx = np.clip(np.searchsorted(edges, v[ok], side="right") - 1, 0, len(edges) - 1)
        rates = pd.Series(y[ok]).groupby(idx).mean().reindex(range(len(edges)), fill_value=np.nan)
        out[c] = ("numeric", edges.tolist(), rates.fillna(y.mean()).tolist())
    for c in categorical:
        rates = pd.Series(y).groupby(x[c].to_numpy()).agg(["mean", "size"])
        rates = rates[rates["size"] >= 20]["mean"]
        out[c] = ("categorical", rates.index.tolist(), rates.tolist())
    return out


MIN_OBSERVED = 20  # a numeric feature with fewer known values in training is left out (e.g. a young book)


def fit(kind: str, frame: pd.DataFrame, y: np.ndarray, seed: int) -> RiskModel:
    x = prepare(frame)[FEATURES]
    numeric = [c for c in NUMERIC if x[c].notna().sum() >= MIN_OBSERVED]
    categorical = list(CATEGORICAL)
    x = x[numeric + categorical]
    base = (scorecard if kind == "scorecard" else gradient_boosting)(seed, numeric, categorical)
    # One model refit on all rows, calibrated on its 3-fold out-of-fold predictions: scoring a
    # million loans runs one model instead of an ensemble of three.
    est = CalibratedClassifierCV(base, method="isotonic", cv=3, ensemble=False)
    with warnings.catch_warnings(), threadpool_limits(ml_threads()):
        # sparse count features collapse quantile bins; that is expected
        warnings.filterwarnings("ignore", message="Bins whose width are too small")
        est.fit(x, y)
    model = RiskModel(kind=kind, estimator=est, features=numeric + categorical, base_rate=float(np.mean(y)),
                      reason_bins=_reason_bins(x, y, numeric, categorical), numeric=numeric, categorical=categorical)
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(x), size=min(len(x), 50_000), replace=False)
    model.training_scores = model.predict(frame.iloc[sample])
    # arrays, not lists: a list pickles 50k Python floats one by one per feature (2 s to load at scoring)
    model.training_features = {c: x[c].iloc[sample].to_numpy(dtype=float, na_value=np.nan) for c in numeric}
    return model


def evaluate(model: RiskModel, frame: pd.DataFrame, y: np.ndarray) -> dict:
    p = model.predict(frame)
    m = score_metrics(y, p)
    table = calibration_table(y, p)
    m["calibration_mean_abs_gap"] = float(table["gap"].abs().mean())
    m["calibration_table"] = table.round(6).to_dict("records")
    return m


def choose(metrics: dict[str, dict]) -> str:
    """Higher out-of-time AUC wins unless its calibration is worse by more than the margin."""
    ranked = sorted(metrics, key=lambda k: metrics[k]["auc"] or 0, reverse=True)
    best, other = ranked[0], ranked[-1]
    if metrics[best]["calibration_mean_abs_gap"] > metrics[other]["calibration_mean_abs_gap"] + CALIBRATION_MARGIN:
        return other
    return best
