"""Retraining as one pure step: window, fit both models, pick one, store it, promotion gate.

The frame is the training snapshots (int_ml_training_snapshots): one row per loan on
book at a matured month-end, features as known on that date and the section 6 label.
The latest matured month-ends are the out-of-time window; earlier ones train. A new
version is always stored; it becomes the champion only when it is at least as good as
the current champion on the same out-of-time rows (AUC not lower, Brier not higher).
"""

import hashlib
import platform
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .features import CATEGORICAL, NUMERIC
from .model_store import champion_version, load_version, save_version, set_champion
from .train import RECIPE, RiskModel, choose, evaluate, fit

OOT_DATES = 2  # latest matured month-ends held out (one while fewer than six have matured)
MAX_TRAIN_ROWS = 200_000  # uniform sample: keeps calibration honest, 1M-loan books train in minutes
MAX_OOT_ROWS = 200_000
MIN_ROWS, MIN_EVENTS = 100, 10  # below this there is nothing to learn yet
KINDS = ("scorecard", "gradient_boosting")


class NotEnoughHistory(RuntimeError):
    """No matured month-end yet gives enough labelled rows (both outcomes) to train on."""


def plan_window(dates: list) -> tuple[list, list]:
    """(training dates, out-of-time dates) among matured snapshot dates; OOT empty when only one."""
    dates = sorted(dates)
    if len(dates) < 2:
        return dates, []
    k = OOT_DATES if len(dates) >= 6 else 1
    return dates[:-k], dates[-k:]


def fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 of the rows (order-independent of how they were read) the model learned and was judged on."""
    cols = sorted(frame.columns)
    f = frame[cols].sort_values(["as_of_date", "loan_id"]).reset_index(drop=True)
    h = hashlib.sha256(pd.util.hash_pandas_object(f, index=False).to_numpy().tobytes())
    return h.hexdigest()


def library_versions() -> dict:
    import duckdb
    import joblib
    import sklearn

    return {"python": platform.python_version(), "scikit-learn": sklearn.__version__, "numpy": np.__version__,
            "pandas": pd.__version__, "duckdb": duckdb.__version__, "joblib": joblib.__version__}


def split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    dates = sorted(frame["as_of_date"].unique())
    train_dates, oot_dates = plan_window(dates)
    if oot_dates:
        is_oot = frame["as_of_date"].isin(oot_dates)
        window = {"out_of_time": True}
    else:  # a single matured month-end: a stable 30% of loans is held out (not out of time)
        h = frame["loan_id"].map(lambda s: int(hashlib.sha256(s.encode()).hexdigest()[:8], 16) % 10)
        is_oot = h < 3
        window = {"out_of_time": False, "note": "one matured month-end only: holdout by loan, not out of time"}
    train, oot = frame[~is_oot].reset_index(drop=True), frame[is_oot].reset_index(drop=True)
    window |= {"train_dates": [str(pd.Timestamp(d).date()) for d in train_dates],
               "oot_dates": [str(pd.Timestamp(d).date()) for d in (oot_dates or train_dates)],
               "train_rows": len(train), "oot_rows": len(oot),
               "train_event_rate": float(train["label"].mean()) if len(train) else None,
               "oot_event_rate": float(oot["label"].mean()) if len(oot) else None}
    return train, oot, window


def _enough(y) -> bool:
    y = np.asarray(y)
    return len(y) >= MIN_ROWS and y.sum() >= MIN_EVENTS and (len(y) - y.sum()) >= MIN_EVENTS


def gate(new: dict, champion: dict | None) -> tuple[bool, str]:
    """A new model replaces the champion only when at least as good on the same out-of-time rows."""
    if champion is None:
        return True, "no champion yet"
    if champion.get("auc") is None:
        return True, "the champion cannot be judged on this window"
    if new["auc"] >= champion["auc"] and new["brier"] <= champion["brier"]:
        return True, (f"out-of-time AUC {new['auc']:.4f} >= champion {champion['auc']:.4f} and "
                      f"Brier {new['brier']:.5f} <= champion {champion['brier']:.5f}")
    return False, (f"kept the champion: out-of-time AUC {new['auc']:.4f} vs {champion['auc']:.4f}, "
                   f"Brier {new['brier']:.5f} vs {champion['brier']:.5f} (needs AUC not lower and Brier not higher)")


def retrain(root: Path, frame: pd.DataFrame, seed: int = 0, now: datetime | None = None,
            sampled_from: int | None = None) -> dict:
    """Fit both models on the training window, keep the better, store it, apply the promotion gate.

    Returns the stored metadata plus `promoted` and `why`. Raises NotEnoughHistory when the
    labelled rows cannot support a model yet.
    """
    frame = frame.sort_values(["as_of_date", "loan_id"], kind="mergesort").reset_index(drop=True)
    train, oot, window = split(frame)
    if not (_enough(train["label"]) and len(oot) and oot["label"].nunique() == 2):
        raise NotEnoughHistory(
            f"{len(frame)} labelled rows over {frame['as_of_date'].nunique()} matured month-end(s), "
            f"{int(frame['label'].sum())} roll-forwards: need at least {MIN_ROWS} training rows with "
            f"{MIN_EVENTS} of each outcome and both outcomes in the hold-out window")
    y, y_oot = train["label"].to_numpy(int), oot["label"].to_numpy(int)
    models = {k: fit(k, train, y, seed) for k in KINDS}
    metrics = {k: evaluate(m, oot, y_oot) for k, m in models.items()}
    chosen = choose(metrics)
    model: RiskModel = models[chosen]

    current = champion_version(root)
    champion_metrics = None
    if current:
        old, _ = load_version(root, current)
        try:
            champion_metrics = evaluate(old, oot, y_oot)
        except KeyError:  # the champion needs a feature this frame no longer has
            champion_metrics = {"auc": None}
    promoted, why = gate(metrics[chosen], champion_metrics)

    now = now or datetime.now(timezone.utc)
    data_fp = fingerprint(frame)
    # named by what it learned from, not by the clock: the same data and seed give the same model and name
    named_by = hashlib.sha256(f"{data_fp}|{RECIPE}".encode()).hexdigest()
    version = f"rr30-{window['oot_dates'][-1].replace('-', '')}-{named_by[:10]}-s{seed}"
    meta = {
        "created_at": now.isoformat(),
        "target": "business_rules.md section 6: bucket on D+30 (known on D+30) worse than on D, or written off "
                  "in (D, D+30]",
        "kind": chosen,
        "features": list(model.features),
        "numeric_features": list(NUMERIC),
        "categorical_features": list(CATEGORICAL),
        "training_window": window | {"sampled_from_rows": sampled_from or len(frame)},
        "metrics_oot": metrics,
        "chosen": chosen,
        "champion_before": current,
        "champion_metrics_oot": champion_metrics,
        "promoted": promoted,
        "why": why,
        "library_versions": library_versions(),
        "data_fingerprint": data_fp,
        "recipe": RECIPE,
        "seed": seed,
    }
    save_version(root, version, model, meta)
    if promoted:
        set_champion(root, version, why)
    return meta | {"version": version}


