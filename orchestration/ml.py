"""Risk-model assets: retraining (weekly), daily scoring and monitoring (thin wrappers over ml_assets).

- `risk_model` (group ml_training, job risk_model_weekly, Mondays 07:00 Asia/Shanghai):
  retrains on int_ml_training_snapshots and applies the promotion gate. Also:
  `dagster asset materialize -m orchestration.definitions --select risk_model`.
- `risk_scores` (daily): scores every loan on book at D with the champion version named
  in $ARREARS_HOME/models/champion.json, replaces D's rows of marts.risk_scores. When no
  champion exists yet it trains one first (the first run of a new installation ends with
  scores); while the history holds no matured month-end to learn from, it writes no rows
  and says so in the log and the metadata.
- `risk_score_monitoring` (daily): the scores stored for D - 30 against what happened by D
  (AUC, KS, Brier, calibration table), PSI of today's scores and main features against the
  training sample, with a WARN check when PSI > 0.25.
"""

import json
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from ml_assets.lifecycle import MAX_OOT_ROWS, MAX_TRAIN_ROWS, NotEnoughHistory, plan_window, retrain
from ml_assets.model_store import champion_version, load_version
from ml_assets.monitor import PSI_WARNING, calibration_table, psi, score_metrics
from ml_assets.score import score

from .executor import PRIORITY
from .partitions import business_dates
from .policy import priority_policy
from .resources import ArrearsHome, Warehouse, table_exists

TRAINING_TABLE = "intermediate.int_ml_training_snapshots"
FEATURES_TABLE = "intermediate.int_ml_features_on_date"
OUTCOMES_TABLE = "intermediate.int_ml_outcomes_on_date"
PSI_FEATURES = ["dpd", "overdue_ratio", "outstanding_ratio", "months_on_book", "paid_to_due_90d",
                "days_since_last_payment", "max_days_late_180d", "failed_debits_30d", "calls_30d", "monthly_income"]

SCORES_DDL = """CREATE TABLE IF NOT EXISTS marts.risk_scores (
  as_of_date DATE NOT NULL, loan_id VARCHAR NOT NULL, risk_score DOUBLE NOT NULL, risk_tier VARCHAR NOT NULL,
  model_version VARCHAR NOT NULL, reasons VARCHAR)"""
MONITORING_DDL = """CREATE TABLE IF NOT EXISTS marts.risk_score_monitoring (
  as_of_date DATE, scored_date DATE, model_version VARCHAR, matured_rows BIGINT, event_rate DOUBLE,
  mean_predicted DOUBLE, auc DOUBLE, ks DOUBLE, brier DOUBLE, calibration_mean_abs_gap DOUBLE,
  calibration_table VARCHAR, psi_score DOUBLE, psi_features VARCHAR, psi_max DOUBLE)"""


def models_root(home: ArrearsHome | str | Path) -> Path:
    root = Path(home.path if isinstance(home, ArrearsHome) else home) / "models"
    root.mkdir(parents=True, exist_ok=True)
    return root


def load_training_frame(con, seed: int = 0) -> tuple[pd.DataFrame, int]:
    """Matured snapshots: a uniform, repeatable sample of the training dates, the OOT dates (capped) whole."""
    if not table_exists(con, TRAINING_TABLE):
        raise NotEnoughHistory(f"{TRAINING_TABLE} does not exist yet: run a business date first (arrears run --date D)")
    counts = dict(con.execute(f"SELECT as_of_date, count(*) FROM {TRAINING_TABLE} GROUP BY 1").fetchall())
    train_dates, oot_dates = plan_window(list(counts))
    total = sum(counts.values())
    parts = []
    for dates, cap in ((train_dates, MAX_TRAIN_ROWS), (oot_dates, MAX_OOT_ROWS)):
        if not dates:
            continue
        n = sum(counts[d] for d in dates)
        where = "as_of_date IN (" + ", ".join(f"DATE '{d}'" for d in dates) + ")"
        sample = f" USING SAMPLE reservoir({cap} ROWS) REPEATABLE ({seed})" if n > cap else ""
        parts.append(con.execute(f"SELECT * FROM (SELECT * FROM {TRAINING_TABLE} WHERE {where}){sample}").df())
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["as_of_date", "loan_id", "label"])
    return frame, total


def train_now(warehouse: Warehouse, home, log, seed: int = 0) -> dict:
    with warehouse.connect() as con:
        frame, total = load_training_frame(con, seed)
    log.info(f"Training on {len(frame):,} sampled rows of {total:,} matured snapshot rows")
    meta = retrain(models_root(home), frame, seed=seed, sampled_from=total)
    m = meta["metrics_oot"]
    log.info(f"Model {meta['version']} ({meta['kind']}): " + "; ".join(
        f"{k} OOT AUC {v['auc']:.4f} KS {v['ks']:.4f} Brier {v['brier']:.5f}" for k, v in m.items())
        + f". Promoted: {meta['promoted']} ({meta['why']})")
    return meta


def _calibration_md(table: list[dict]) -> str:
    lines = ["| band | loans | mean predicted | realized | gap |", "|---|---|---|---|---|"]
    lines += [f"| {r['band']} | {r['loans']} | {r['mean_predicted']:.4f} | {r['realized']:.4f} | {r['gap']:+.4f} |"
              for r in table]
    return "\n".join(lines)


@dg.asset(
    key=["risk_model"],
    group_name="ml_training",
    kinds={"scikitlearn"},
    deps=[dg.AssetKey("int_ml_training_snapshots")],
    description="Weekly retraining of the 30-day roll-forward model on matured month-end snapshots: scorecard vs "
                "gradient boosting, calibrated, out-of-time window, stored under $ARREARS_HOME/models/, promoted to "
                "champion only when at least as good on the same out-of-time window.",
)
def risk_model(context: dg.AssetExecutionContext, warehouse: Warehouse, arrears_home: ArrearsHome) -> dg.MaterializeResult:
    meta = train_now(warehouse, arrears_home, context.log)
    md = {"version": meta["version"], "chosen": meta["chosen"], "promoted": meta["promoted"], "why": meta["why"],
          "champion": champion_version(models_root(arrears_home)),
          "training_window": dg.MetadataValue.json(meta["training_window"]),
          "data_fingerprint": meta["data_fingerprint"],
          "library_versions": dg.MetadataValue.json(meta["library_versions"])}
    for kind, m in meta["metrics_oot"].items():
        md |= {f"{kind}_oot_auc": m["auc"], f"{kind}_oot_ks": m["ks"], f"{kind}_oot_brier": m["brier"],
               f"{kind}_calibration_mean_abs_gap": m["calibration_mean_abs_gap"]}
    md["calibration_table"] = dg.MetadataValue.md(_calibration_md(meta["metrics_oot"][meta["chosen"]]["calibration_table"]))
    return dg.MaterializeResult(metadata=md)


@dg.asset(
    key=["risk_scores"],
    group_name="ml_scoring",
    kinds={"duckdb", "scikitlearn"},
    partitions_def=business_dates,
    deps=[dg.AssetKey("int_ml_features_on_date"), dg.AssetKey("int_ml_training_snapshots")],
    op_tags={PRIORITY: "2"},  # first after dbt: the list waits for it
    description="marts.risk_scores for D: the probability that each loan on book rolls to a worse bucket or is "
                "written off within 30 days, its tier and reasons, from the champion model version named explicitly.",
)
def risk_scores(context: dg.AssetExecutionContext, warehouse: Warehouse, arrears_home: ArrearsHome) -> dg.MaterializeResult:
    day = context.partition_key
    root = models_root(arrears_home)
    version = champion_version(root)
    trained = None
    if version is None:
        context.log.info("No champion model yet: training one first (later retraining is job risk_model_weekly)")
        try:
            trained = train_now(warehouse, arrears_home, context.log)
            version = champion_version(root)
        except NotEnoughHistory as e:
            context.log.warning(f"No risk scores for {day}: no model can be trained yet ({e}). Scores start once a "
                                "month-end's 30-day window has passed; or materialize asset risk_model.")
    with warehouse.connect() as con:
        built = con.execute(f"SELECT min(as_of_date), max(as_of_date) FROM {FEATURES_TABLE}").fetchall()[0]
        if built[0] is not None and not (str(built[0]) == str(built[1]) == day):
            raise RuntimeError(f"{FEATURES_TABLE} holds {built[0]}, not {day}: run the dbt models for {day} first")
        # through Arrow: DuckDB's own pandas conversion of the 1M-loan frame takes three times as long
        frame = (con.sql(f"SELECT * FROM {FEATURES_TABLE} ORDER BY loan_id").to_arrow_table().to_pandas()
                 if version else None)
    rows = pd.DataFrame(columns=["as_of_date", "loan_id", "risk_score", "risk_tier", "model_version", "reasons"])
    if version:
        model, _ = load_version(root, version)
        rows = rescore(model, version, frame, day)
    write_scores(warehouse, day, rows)
    tiers = {str(k): int(v) for k, v in rows["risk_tier"].value_counts().items()}
    md = {"model_version": version or "none", "rows": len(rows), "rows_by_tier": dg.MetadataValue.json(dict(tiers)),
          "mean_risk_score": float(rows["risk_score"].mean()) if len(rows) else None,
          "trained_on_first_need": trained["version"] if trained else None}
    context.log.info(f"Scored {len(rows):,} loans on {day} with {version}: {dict(tiers)}")
    return dg.MaterializeResult(metadata=md)


def rescore(model, version: str, frame: pd.DataFrame, day: str) -> pd.DataFrame:
    """The rows of marts.risk_scores for `day` from its feature frame (also used to reproduce a past date)."""
    out = score(model, version, frame, priority_policy())
    out.insert(0, "as_of_date", date.fromisoformat(day))
    return out


def write_scores(warehouse: Warehouse, day: str, rows: pd.DataFrame) -> None:
    with warehouse.connect() as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        con.execute(SCORES_DDL)
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM marts.risk_scores WHERE as_of_date = ?", [day])
        if len(rows):
            con.register("__scores", rows[["as_of_date", "loan_id", "risk_score", "risk_tier", "model_version",
                                           "reasons"]])
            con.execute("INSERT INTO marts.risk_scores SELECT * FROM __scores")
            con.unregister("__scores")
        con.execute("COMMIT")


@dg.asset(
    key=["risk_score_monitoring"],
    group_name="ml_monitoring",
    kinds={"duckdb"},
    partitions_def=business_dates,
    deps=[dg.AssetKey("risk_scores"), dg.AssetKey("int_ml_outcomes_on_date")],
    check_specs=[dg.AssetCheckSpec("risk_score_psi_stable", asset=["risk_score_monitoring"],
                                   description=f"PSI of the score and main features vs training <= {PSI_WARNING}")],
    description="Feedback loop: scores stored for D-30 against the outcomes realized by D (AUC, KS, Brier, "
                "calibration per decile) and PSI of today's score and main features against the training sample; "
                "one row per D in marts.risk_score_monitoring.",
)
def risk_score_monitoring(context: dg.AssetExecutionContext, warehouse: Warehouse, arrears_home: ArrearsHome):
    day = context.partition_key
    scored = (date.fromisoformat(day) - timedelta(days=30)).isoformat()
    with warehouse.connect() as con:
        con.execute(SCORES_DDL)
        matured = con.execute(f"""
            SELECT r.risk_score, o.label FROM marts.risk_scores r
            JOIN {OUTCOMES_TABLE} o ON o.loan_id = r.loan_id AND o.as_of_date = r.as_of_date
            WHERE r.as_of_date = ?""", [scored]).df()
        today = con.execute("SELECT model_version, risk_score FROM marts.risk_scores WHERE as_of_date = ?", [day]).df()
        features = con.execute(f"SELECT {', '.join(PSI_FEATURES)} FROM {FEATURES_TABLE} WHERE as_of_date = ?",
                               [day]).df()
    md: dict = {"scored_date": scored, "matured_rows": len(matured)}
    row = {"as_of_date": day, "scored_date": scored, "matured_rows": len(matured)}
    if len(matured) >= 10 and matured["label"].nunique() == 2:
        m = score_metrics(matured["label"], matured["risk_score"])
        table = calibration_table(matured["label"], matured["risk_score"])
        gap = float(table["gap"].abs().mean())
        row |= {"event_rate": m["event_rate"], "mean_predicted": float(matured["risk_score"].mean()), "auc": m["auc"],
                "ks": m["ks"], "brier": m["brier"], "calibration_mean_abs_gap": gap,
                "calibration_table": table.round(6).to_json(orient="records")}
        md |= {k: row[k] for k in ("event_rate", "mean_predicted", "auc", "ks", "brier", "calibration_mean_abs_gap")}
        md["calibration_table"] = dg.MetadataValue.md(_calibration_md(table.to_dict("records")))
    else:
        md["note"] = f"no matured scores with both outcomes for {scored} (scores start with the first model)"
    psis: dict = {}
    version = today["model_version"].iloc[0] if len(today) else None
    if version:
        model, _ = load_version(models_root(arrears_home), version)
        row["model_version"] = version
        row["psi_score"] = psi(model.training_scores, today["risk_score"])
        psis = {c: psi(model.training_features[c], features[c]) for c in PSI_FEATURES if c in model.training_features}
        row["psi_features"] = json.dumps(psis)
        md |= {"model_version": version, "psi_score": row["psi_score"],
               "psi_features": dg.MetadataValue.json({k: round(v, 5) for k, v in psis.items()})}
    values = [v for v in [row.get("psi_score"), *psis.values()] if v is not None and not np.isnan(v)]
    row["psi_max"] = max(values) if values else None
    with warehouse.connect() as con:
        con.execute(MONITORING_DDL)
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM marts.risk_score_monitoring WHERE as_of_date = ?", [day])
        cols = [r[0] for r in con.execute("DESCRIBE marts.risk_score_monitoring").fetchall()]
        con.execute(f"INSERT INTO marts.risk_score_monitoring ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    [row.get(c) for c in cols])
        con.execute("COMMIT")
    yield dg.MaterializeResult(metadata=md)
    drifted = {k: v for k, v in ({"risk_score": row.get("psi_score")} | psis).items()
               if v is not None and not np.isnan(v) and v > PSI_WARNING}
    yield dg.AssetCheckResult(
        check_name="risk_score_psi_stable", passed=not drifted, severity=dg.AssetCheckSeverity.WARN,
        description=(f"PSI above {PSI_WARNING}: {drifted}: the book has moved away from the training window; "
                     "consider retraining (job risk_model_weekly)") if drifted else "stable",
        metadata={"psi_max": row["psi_max"], "drifted": dg.MetadataValue.json(drifted)})


risk_model_weekly = dg.define_asset_job(
    "risk_model_weekly", selection=dg.AssetSelection.groups("ml_training"), executor_def=dg.in_process_executor,
    description="Retrain the risk model on matured snapshots; promotes only through the gate.")

ml_asset_defs: list = [risk_model, risk_scores, risk_score_monitoring]
ml_checks: list = []
ml_jobs: list = [risk_model_weekly]
ml_schedules: list = [dg.ScheduleDefinition(name="risk_model_weekly_schedule", job=risk_model_weekly,
                                            cron_schedule="0 7 * * 1", execution_timezone="Asia/Shanghai")]
