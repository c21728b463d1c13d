"""dbt models as Dagster assets, one partition per business date."""

import importlib.metadata
import os
import shutil
from contextlib import contextmanager
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Mapping

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets
from packaging import version

from .executor import RUNS_ALONE
from .faults import crash_point
from .partitions import business_dates
from .resources import Warehouse, table_exists
from .settings import DBT_PROJECT_DIR


def _manifest_is_stale(project: DbtProject) -> bool:
    if not project.manifest_path.exists():
        return True
    built = project.manifest_path.stat().st_mtime
    sources = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml"]
    for folder in ("models", "seeds", "macros", "tests"):
        sources.extend((DBT_PROJECT_DIR / folder).rglob("*.*"))
    return any(p.stat().st_mtime > built for p in sources if p.is_file())


@cache
def arrears_dbt_project() -> DbtProject:
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    project.prepare_if_dev()
    # Outside `dagster dev` too: a checkout whose models changed re-parses once.
    if _manifest_is_stale(project):
        project.preparer.prepare(project)
    return project


class ArrearsDbtTranslator(DagsterDbtTranslator):
    """Groups from folders (staging / intermediate / marts_<area>); sources are the raw assets."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey(["raw", dbt_resource_props["name"]])
        return dg.AssetKey([dbt_resource_props["name"]])

    def get_asset_check_spec(self, asset_spec, manifest, unique_id, project):
        # full_history tests are left out of the daily build (see dbt_build_args): not daily checks.
        if "full_history" in manifest["nodes"].get(unique_id, {}).get("tags", []):
            return None
        return super().get_asset_check_spec(asset_spec, manifest, unique_id, project)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        if dbt_resource_props["resource_type"] == "seed":
            return "policy"
        if len(fqn) > 2 and fqn[1] == "marts":
            return f"marts_{fqn[2]}" if len(fqn) > 3 else "marts"
        return fqn[1] if len(fqn) > 2 else "dbt"


translator = ArrearsDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


class ArrearsDbtCli(DbtCliResource):
    """The dbt CLI resource, without three costs dagster-dbt adds to every daily run:
    - the dbt adapter it opens in the run's own process: it serves only .fetch_row_counts() /
      .fetch_column_metadata(), which this project does not use (the row counts come from
      _row_counts), and loading dbt's adapter and config modules takes 2-8 s on 2 cores;
    - `dbt --version`, run once per run to tell dbt-core from dbt Fusion: 2-4 s, and dbt asks
      PyPI for its latest release on the way (a network call at run time). dbt here is always
      the dbt-core package of this environment;
    - a full parse whenever the warehouse differs from the one the project's partial-parse file
      was written for (the warehouse path is part of dbt's profile hash; each test, bench home
      or a second deployment has its own): every invocation is seeded with the partial-parse
      file kept for its own warehouse (kept_partial_parse)."""

    def _initialize_dbt_core_adapter(self, args):  # dagster-dbt passes None on when this is None
        return None

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _get_unique_target_path(self, *, context) -> Path:
        # dagster-dbt copies the project's partial_parse.msgpack into the invocation's target
        # only when the target holds none: seed it first with this warehouse's own
        path = super()._get_unique_target_path(context=context)
        kept = kept_partial_parse()
        if kept.exists():
            target = path if path.is_absolute() else Path(self.project_dir) / path
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(kept, target / "partial_parse.msgpack")
        return path


def kept_partial_parse() -> Path:
    """dbt's partial-parse file for the warehouse the dbt profile points at, beside it."""
    return Path(os.environ["ARREARS_WAREHOUSE"]).with_name("dbt_partial_parse.msgpack")


def dbt_build_args() -> list[str]:
    # dbt unit tests pin formulas on fixed rows; they run in the test suite, not daily. Tests tagged
    # full_history re-check uniqueness over every row ever loaded, a cost that grows with history:
    # extraction already keeps the first delivery of each key and the raw GX suites check each
    # day's batch, so they run in the test suite and on demand (dbt test --select tag:full_history).
    # (one --exclude value, space-separated: how dagster-dbt reads runtime selection)
    return ["build", "--exclude", "test_type:unit tag:full_history"]


@contextmanager
def business_date_for_dbt(business_date: str):
    """The business date for the dbt invocations inside the block, as ARREARS_BUSINESS_DATE
    (macro business_date). Not a --vars value: changed vars make dbt re-parse the whole project
    on every run, an environment variable read at execution keeps partial parsing."""
    before = os.environ.get("ARREARS_BUSINESS_DATE")
    os.environ["ARREARS_BUSINESS_DATE"] = business_date
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("ARREARS_BUSINESS_DATE", None)
        else:
            os.environ["ARREARS_BUSINESS_DATE"] = before


@dbt_assets(
    manifest=arrears_dbt_project().manifest_path,
    project=arrears_dbt_project(),
    dagster_dbt_translator=translator,
    partitions_def=business_dates,
    # dbt's own process writes the warehouse: no step of the run may hold it meanwhile
    op_tags={RUNS_ALONE: "true"},
)
def arrears_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: Warehouse):
    with business_date_for_dbt(context.partition_key):
        if dg.AssetKey(["int_loan_state_snapshots"]) in context.selected_asset_keys:
            _backfill_snapshots(context, dbt, warehouse)
        invocation = dbt.cli(dbt_build_args(), context=context)
        events = []
        for event in invocation.stream():
            events.append(event)
            if len(events) == 3:
                crash_point("during_dbt")
        _keep_partial_parse(invocation.target_path)
        prune_invocation_targets(Path(invocation.target_path).parent)
        if dg.AssetKey(["int_ml_training_snapshots"]) in context.selected_asset_keys:
            _catch_up_training_snapshots(context, dbt, warehouse)
    # dbt has exited and released the warehouse: add the day's row counts.
    with warehouse.connect() as con:
        for event in events:
            if isinstance(event, dg.Output):
                yield event.with_metadata({**event.metadata, **_row_counts(con, context.asset_key_for_output(event.output_name).path[-1], context.partition_key)})
            else:
                yield event


def _keep_partial_parse(invocation_target: Path) -> None:
    """dagster-dbt gives every invocation its own target folder. Keep the partial_parse.msgpack
    this invocation wrote (kept_partial_parse): it is only reusable with this profile (the
    warehouse path is part of it), and with it the next run parses only what changed instead of
    the whole project."""
    written = Path(invocation_target) / "partial_parse.msgpack"
    if not written.exists():
        return
    kept = kept_partial_parse()
    tmp = kept.with_name(kept.name + ".tmp")
    shutil.copyfile(written, tmp)
    os.replace(tmp, kept)  # a reader sees the old file or the new one, whole


INVOCATION_TARGETS_KEPT = 30


def prune_invocation_targets(target_root: Path, keep: int = INVOCATION_TARGETS_KEPT) -> list[Path]:
    """Remove all but the `keep` newest invocation folders under dbt's target folder (those with
    the dbt.log dagster-dbt has each invocation write there): each holds a manifest, logs and
    compiled SQL (about 9 MB), and a run makes one to three of them, so a year of daily runs
    would keep gigabytes. Returns the folders removed."""
    folders = sorted((d for d in target_root.iterdir() if d.is_dir() and (d / "dbt.log").exists()),
                     key=lambda d: d.stat().st_mtime, reverse=True)
    for old in folders[keep:]:
        shutil.rmtree(old, ignore_errors=True)
    return folders[keep:]


def _snapshot_rows_per_run() -> int:
    return int(os.environ.get("ARREARS_SNAPSHOT_ROWS_PER_RUN", "4000000"))


def _pending_snapshot_rows(con, day: str) -> int:
    """Loan rows of the snapshot dates <= day not yet in int_loan_state_snapshots (same calendar as the model)."""
    if not table_exists(con, "raw.loans"):
        return 0
    not_built = ("AND d NOT IN (SELECT DISTINCT as_of_date FROM intermediate.int_loan_state_snapshots)"
                 if table_exists(con, "intermediate.int_loan_state_snapshots") else "")
    return con.execute(f"""
        WITH b AS (SELECT min(disbursed_on) AS f FROM raw.loans),
        m AS (SELECT CAST(last_day(g) AS DATE) AS me FROM b,
                     generate_series(CAST(date_trunc('month', b.f) AS TIMESTAMP), CAST(CAST($1 AS DATE) AS TIMESTAMP),
                                     INTERVAL 1 MONTH) AS t(g)
              WHERE b.f IS NOT NULL),
        dates AS (SELECT me AS d FROM m UNION SELECT CAST(me + 30 AS DATE) FROM m)
        SELECT coalesce(sum((SELECT count(*) FROM raw.loans l WHERE l.disbursed_on <= dates.d)), 0)
        FROM dates WHERE d <= CAST($1 AS DATE) {not_built}""", [day]).fetchone()[0]


def _repeat_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: Warehouse, what: str,
                args: list[str], left_to_do, done) -> None:
    """Run dbt `args` until done(left_to_do(con)); every pass must make progress."""
    before = None
    while True:
        with warehouse.connect() as con:
            left = left_to_do(con)
        if done(left):
            return
        if left == before:
            raise RuntimeError(f"{what}: no progress, {left:,} still to compute")
        context.log.info(f"{what}: {left:,} still to compute, running a dbt pass")
        dbt.cli(args, manifest=arrears_dbt_project().manifest_path).wait()
        before = left


def _backfill_snapshots(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: Warehouse) -> None:
    """Before the day's build, compute earlier snapshot dates in bounded passes until what is left
    fits one run (a first load of a large book), so the build's downstream marts see every date."""
    day, budget = context.partition_key, _snapshot_rows_per_run()
    args = ["build", "--select", "+int_loan_state_snapshots", "--exclude", "resource_type:test"]
    _repeat_dbt(context, dbt, warehouse, "int_loan_state_snapshots (loan rows of snapshot dates)", args,
                lambda con: _pending_snapshot_rows(con, day), lambda left: left <= budget)


PENDING_TRAINING_MONTH_ENDS = """
    SELECT count(DISTINCT as_of_date) FROM intermediate.int_loan_state_snapshots
    WHERE is_month_end AND as_of_date + 30 <= CAST(? AS DATE)
      AND as_of_date NOT IN (SELECT DISTINCT as_of_date FROM intermediate.int_ml_training_snapshots)
"""


def _catch_up_training_snapshots(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: Warehouse) -> None:
    """int_ml_training_snapshots adds a bounded number of month-ends per dbt run (memory); on a
    first load or after a long pause, run it again until every matured month-end is in."""
    day = context.partition_key
    args = ["run", "--select", "int_ml_training_snapshots"]
    _repeat_dbt(context, dbt, warehouse, "int_ml_training_snapshots (matured month-ends)", args,
                lambda con: con.execute(PENDING_TRAINING_MONTH_ENDS, [day]).fetchone()[0], lambda left: left == 0)


def _row_counts(con, name: str, business_date: str) -> dict:
    found = con.execute(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = ? AND table_type = 'BASE TABLE'",
        [name]).fetchone()
    if not found:
        return {}
    cols = {r[0] for r in con.execute(f"DESCRIBE {found[0]}.{name}").fetchall()}
    meta = {"dagster/row_count": con.execute(f"SELECT count(*) FROM {found[0]}.{name}").fetchone()[0]}
    if "as_of_date" in cols:
        meta["rows_for_business_date"] = con.execute(
            f"SELECT count(*) FROM {found[0]}.{name} WHERE as_of_date = ?", [business_date]).fetchone()[0]
    return meta
