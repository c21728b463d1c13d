"""Model training, calibration, storage and monitoring on a synthetic frame with a known signal."""

import numpy as np
import pandas as pd
import pytest

from ml_assets.features import CATEGORICAL, NUMERIC
from ml_assets.model_store import champion_version, load_version, save_version, set_champion
from ml_assets.monitor import calibration_table, ks_statistic, psi, score_metrics
from ml_assets.priority import PriorityPolicy
from ml_assets.fast_predict import predict_positive
from ml_assets.score import score, top_columns
from ml_assets.train import choose, evaluate, fit


def _frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    f = pd.DataFrame({c: rng.poisson(1.0, n).astype(float) for c in NUMERIC})
    f["dpd"] = np.where(rng.random(n) < 0.7, 0, rng.integers(1, 120, n)).astype(float)
    f["failed_debits_7d"] = rng.poisson(0.5 + f["dpd"] / 60)
    f["monthly_income"] = rng.lognormal(9, 0.5, n)
    f.loc[rng.random(n) < 0.05, "monthly_income"] = np.nan
    f["bucket"] = np.where(f["dpd"] == 0, "M0", np.where(f["dpd"] <= 30, "M1", "M2"))
    f["product_type"] = rng.choice(["cash_loan", "consumer_installment"], n)
    f["channel"] = rng.choice(["app", "partner", "branch"], n)
    f["province"] = rng.choice(["Beijing", "Sichuan", None], n)
    f["employment_type"] = rng.choice(["salaried", "student", "unemployed"], n)
    logit = -3 + 0.03 * f["dpd"] + 0.6 * f["failed_debits_7d"] + 0.8 * (f["employment_type"] == "unemployed")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    f["loan_id"] = [f"L{seed}_{i:06d}" for i in range(n)]
    return f, y.to_numpy()


@pytest.fixture(scope="module")
def trained():
    train, y = _frame(6000, 1)
    oot, y_oot = _frame(3000, 2)
    models = {k: fit(k, train, y, seed=0) for k in ("scorecard", "gradient_boosting")}
    metrics = {k: evaluate(m, oot, y_oot) for k, m in models.items()}
    return models, metrics, oot, y_oot


def test_both_models_find_the_signal_and_are_calibrated(trained):
    models, metrics, _, _ = trained
    for kind, m in metrics.items():
        assert m["auc"] > 0.75, (kind, m["auc"])
        assert m["calibration_mean_abs_gap"] < 0.03, (kind, m["calibration_mean_abs_gap"])
        assert 0 < m["brier"] < 0.25
        assert len(m["calibration_table"]) == 10
    assert choose(metrics) in metrics


def test_choose_prefers_auc_unless_calibration_is_clearly_worse():
    good = {"auc": 0.80, "calibration_mean_abs_gap": 0.01}
    sharp_but_off = {"auc": 0.82, "calibration_mean_abs_gap": 0.05}
    assert choose({"a": good, "b": sharp_but_off}) == "a"
    assert choose({"a": good, "b": {"auc": 0.82, "calibration_mean_abs_gap": 0.015}}) == "b"


def test_stored_version_rescoring_reproduces_scores_exactly(trained, tmp_path):
    models, _, oot, _ = trained
    policy = PriorityPolicy()
    first = score(models["gradient_boosting"], "rr30-test", oot, policy)
    save_version(tmp_path, "rr30-test", models["gradient_boosting"], {"features": NUMERIC + CATEGORICAL})
    set_champion(tmp_path, "rr30-test", "first model")
    assert champion_version(tmp_path) == "rr30-test"
    loaded, meta = load_version(tmp_path, champion_version(tmp_path))
    again = score(loaded, meta["version"], oot, policy)
    pd.testing.assert_frame_equal(first, again)
    assert set(first["model_version"]) == {"rr30-test"}
    assert first["risk_score"].between(0, 1).all()


def test_reasons_name_the_drivers_in_words(trained):
    models, _, oot, _ = trained
    risky = oot.assign(dpd=90.0, failed_debits_7d=6.0, bucket="M2", employment_type="unemployed").head(3)
    out = score(models["scorecard"], "v", risky, PriorityPolicy())
    for text in out["reasons"]:
        assert "failed debit(s) in 7 days" in text or "days past due" in text, text
    assert (out["risk_tier"] == "high").all()


def test_fast_gradient_boosting_path_gives_the_estimators_own_floats(trained):
    """Scoring's fast path (ml_assets/fast_predict.py) against sklearn's predict_proba, bit for bit,
    on rows with categories never seen in training and missing values; a scorecard takes the
    generic path."""
    models, _, oot, _ = trained
    rows = oot.copy()
    rows.loc[rows.index[:40], "province"] = "Tibet"  # unseen in training
    rows.loc[rows.index[40:80], "employment_type"] = None  # missing: 'unknown', also unseen
    rows.loc[rows.index[80:120], "monthly_income"] = np.nan
    rows.loc[rows.index[120:160], "dpd"] = 10_000.0  # beyond every training value
    gb = models["gradient_boosting"]
    x = gb.prepared(rows)
    fast = predict_positive(gb.estimator, x, n_threads=1)
    assert fast is not None
    np.testing.assert_array_equal(fast, gb.estimator.predict_proba(x)[:, 1])
    np.testing.assert_array_equal(gb.predict(rows), fast)
    sc = models["scorecard"]
    assert predict_positive(sc.estimator, sc.prepared(rows), n_threads=1) is None


def test_top_columns_is_the_head_of_a_stable_descending_sort():
    rng = np.random.default_rng(3)
    for _ in range(300):
        n, k = rng.integers(1, 40), rng.integers(1, 9)
        values = rng.integers(0, 4, size=(n, k)).astype(float)  # many ties
        values[rng.random((n, k)) < 0.2] = np.nan
        values[rng.random((n, k)) < 0.05] = np.inf
        for top in (1, 3, 12):
            expected = np.argsort(-values, axis=1, kind="stable")[:, :top]
            np.testing.assert_array_equal(top_columns(np.asfortranarray(values), top), expected)


def test_monitoring_metrics():
    y = np.array([0, 0, 1, 1])
    assert ks_statistic(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    m = score_metrics(y, [0.1, 0.2, 0.8, 0.9])
    assert (m["auc"], m["ks"]) == (1.0, 1.0)
    assert m["brier"] == pytest.approx((0.01 + 0.04 + 0.04 + 0.01) / 4)
    t = calibration_table(np.r_[np.zeros(50), np.ones(50)], np.linspace(0, 1, 100))
    assert list(t["band"]) == list(range(1, 11)) and t["loans"].sum() == 100
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, 20000)
    assert psi(base, rng.normal(0, 1, 20000)) < 0.02
    assert psi(base, rng.normal(1.5, 1, 20000)) > 0.25
