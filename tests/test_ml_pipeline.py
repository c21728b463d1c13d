"""Risk model lifecycle: promotion gate on synthetic snapshots; leakage and exact rescoring through Dagster."""

import os
import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml_assets.features import CATEGORICAL, NUMERIC
from ml_assets.lifecycle import NotEnoughHistory, retrain
from ml_assets.model_store import champion_version, load_version
from orchestration.extract.core_banking import extract_core_banking
from orchestration.extract.gateway import extract_settlement_files
from orchestration.ml import FEATURES_TABLE, TRAINING_TABLE, load_training_frame, rescore
from orchestration.simulator import simulate

DATES = pd.to_datetime(["2025-01-31", "2025-02-28", "2025-03-31", "2025-04-30", "2025-05-31", "2025-06-30"])


def _snapshots(n_per_date: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for d in DATES:
        f = pd.DataFrame({c: rng.poisson(1.0, n_per_date).astype(float) for c in NUMERIC})
        f["dpd"] = np.where(rng.random(n_per_date) < 0.7, 0, rng.integers(1, 120, n_per_date)).astype(float)
        for c in CATEGORICAL:
            f[c] = rng.choice(["a", "b", "c"], n_per_date)
        logit = -3 + 0.03 * f["dpd"] + 0.6 * f["failed_debits_7d"]
        f["label"] = (rng.random(n_per_date) < 1 / (1 + np.exp(-logit))).astype(int)
        f["as_of_date"] = d
        f["loan_id"] = [f"L{i:06d}" for i in range(n_per_date)]
        parts.append(f)
    return pd.concat(parts, ignore_index=True)


def test_promotion_gate(tmp_path):
    root = tmp_path / "models"
    frame = _snapshots(600, 1)
    t0 = datetime(2025, 5, 5, tzinfo=timezone.utc)
    first = retrain(root, frame, now=t0)
    assert first["promoted"] and champion_version(root) == first["version"]
    assert first["training_window"]["oot_dates"] == ["2025-05-31", "2025-06-30"]
    assert first["training_window"]["out_of_time"] is True
    assert set(first["metrics_oot"]) == {"scorecard", "gradient_boosting"}
    for m in first["metrics_oot"].values():
        assert m["auc"] > 0.7 and len(m["calibration_table"]) == 10
    assert {"scikit-learn", "pandas", "numpy"} <= set(first["library_versions"]) and len(first["data_fingerprint"]) == 64

    # the same data again: exactly as good on the same window, so it may replace the champion
    again = retrain(root, frame, now=datetime(2025, 5, 12, tzinfo=timezone.utc))
    assert again["promoted"] and again["champion_metrics_oot"]["auc"] == pytest.approx(again["metrics_oot"][again["chosen"]]["auc"])

    # training labels scrambled (the out-of-time window is untouched): stored, but the champion stays
    noisy = frame.copy()
    train_rows = noisy["as_of_date"] < DATES[4]
    noisy.loc[train_rows, "label"] = np.random.default_rng(9).permutation(noisy.loc[train_rows, "label"].to_numpy())
    worse = retrain(root, noisy, now=datetime(2025, 5, 19, tzinfo=timezone.utc))
    assert not worse["promoted"] and "kept the champion" in worse["why"]
    assert champion_version(root) == again["version"]
    assert load_version(root, worse["version"])[1]["promoted"] is False

    with pytest.raises(NotEnoughHistory):
        retrain(tmp_path / "empty", frame.head(30))


BOOK = {"loans": 1000, "start": date(2025, 1, 1), "end": date(2025, 7, 31), "seed": 5}
D = "2025-05-20"
REPO = Path(__file__).resolve().parent.parent
DBT = Path(sys.executable).parent / "dbt"


def _extract_and_build(home: Path, wh: Path, tmp: Path, day: str) -> None:
    """Real extraction of everything the source holds now, then the dbt models behind scoring and training."""
    with duckdb.connect(str(wh)) as con:
        extract_core_banking(con, f"sqlite:///{home / 'source' / 'core_banking.sqlite'}", day)
        extract_settlement_files(con, str(home / "source" / "payments"), day)
    env = {**os.environ, "ARREARS_WAREHOUSE": str(wh)}
    r = subprocess.run([str(DBT), "build", "--select", "+int_ml_features_on_date", "+int_ml_training_snapshots",
                        "--exclude", "resource_type:test", "--vars", f"{{business_date: '{day}'}}",
                        "--project-dir", str(REPO / "dbt_project"), "--profiles-dir", str(REPO / "dbt_project"),
                        "--target-path", str(tmp / "target"), "--log-path", str(tmp / "logs")],
                       cwd=REPO / "dbt_project", env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:]


def _features(wh: Path) -> pd.DataFrame:
    with duckdb.connect(str(wh), read_only=True) as con:
        return con.execute(f"SELECT * FROM {FEATURES_TABLE} ORDER BY loan_id").df()


def test_scores_use_only_what_is_known_on_d_and_rescoring_reproduces_them(arrears_home, tmp_path):
    wh, root = tmp_path / "wh.duckdb", arrears_home / "models"
    # The source as it stood a few days after D (the settlement file of a day <= D may arrive up to
    # 3 days late and then counts on D, business_rules.md section 1) ...
    simulate(arrears_home / "source", until=date(2025, 5, 23), **BOOK)
    _extract_and_build(arrears_home, wh, tmp_path, D)
    with duckdb.connect(str(wh), read_only=True) as con:
        frame, total = load_training_frame(con)
    meta = retrain(root, frame, sampled_from=total)
    assert meta["promoted"] and meta["training_window"]["oot_dates"] == ["2025-03-31"]
    model, stored = load_version(root, champion_version(root))
    features_before = _features(wh)
    before = rescore(model, stored["version"], features_before, D)
    assert len(before) > 400 and before["risk_score"].between(0, 1).all()
    assert set(before["model_version"]) == {meta["version"]} and before["reasons"].str.len().gt(0).all()

    # ... and after ten more weeks arrived (payments, back-dated bookings, reversals, write-offs, files):
    simulate(arrears_home / "source", until=date(2025, 7, 31), **BOOK)
    _extract_and_build(arrears_home, wh, tmp_path, D)
    features_after = _features(wh)
    pd.testing.assert_frame_equal(features_before, features_after)
    # a stored version, loaded again by name, reproduces D's scores exactly
    reloaded, _ = load_version(root, meta["version"])
    pd.testing.assert_frame_equal(before, rescore(reloaded, meta["version"], features_after, D))
    # the later data did reach the warehouse, and the training snapshots still end where D's knowledge ends
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("SELECT max(value_date) FROM staging.stg_core_banking__loan_transactions").fetchone()[0] \
            > date(2025, 7, 1)
        assert con.execute(f"SELECT max(as_of_date) FROM {TRAINING_TABLE}").fetchone()[0] == date(2025, 3, 31)


@pytest.mark.parametrize("first_day", ["2025-04-30", "2025-05-10"])
def test_training_rows_of_a_month_end_reuse_the_features_scored_on_it(arrears_home, tmp_path, first_day):
    """The month-end's features, kept as scoring computed them (int_ml_features_month_end), become its
    training rows 30 days later: the same rows as computing them from the snapshots. A first load
    after the month-end (2025-05-10) keeps them too, from the month-end's snapshot."""
    simulate(arrears_home / "source", until=date(2025, 7, 31), **BOOK)
    wh = tmp_path / "wh.duckdb"
    _extract_and_build(arrears_home, wh, tmp_path, first_day)  # the month-end or a first load after it: kept
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("SELECT DISTINCT as_of_date FROM intermediate.int_ml_features_month_end").fetchall() \
            == [(date(2025, 4, 30),)]
    _extract_and_build(arrears_home, wh, tmp_path, "2025-05-30")  # its 30-day mark: its training rows
    month_end = f"SELECT * FROM {TRAINING_TABLE} WHERE as_of_date = DATE '2025-04-30' ORDER BY loan_id"
    with duckdb.connect(str(wh)) as con:
        reused = con.execute(month_end).df()
        kept = con.execute("SELECT count(*) FROM intermediate.int_ml_features_month_end "
                           "WHERE as_of_date = DATE '2025-04-30'").fetchone()[0]
        assert kept == len(reused) > 300
        con.execute("DELETE FROM intermediate.int_ml_features_month_end")  # nothing kept: all computed
    r = subprocess.run([str(DBT), "run", "--select", "int_ml_training_snapshots", "--full-refresh",
                        "--vars", "{business_date: '2025-05-30'}", "--project-dir", str(REPO / "dbt_project"),
                        "--profiles-dir", str(REPO / "dbt_project"), "--target-path", str(tmp_path / "target"),
                        "--log-path", str(tmp_path / "logs")],
                       cwd=REPO / "dbt_project", env={**os.environ, "ARREARS_WAREHOUSE": str(wh)},
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:]
    with duckdb.connect(str(wh), read_only=True) as con:
        computed = con.execute(month_end).df()
    pd.testing.assert_frame_equal(reused[computed.columns], computed)
