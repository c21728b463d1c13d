"""Great Expectations 1.x suites, kept as JSON in `expectations/`, run on pandas batches.

GX's SQL datasource returns empty results against DuckDB (GX issue #11579), so
each check pulls its rows from DuckDB as a pandas DataFrame and validates that.
Suites are re-read from their files on every run: the files are the truth.
Severity `critical` fails the check with ERROR (blocking publication);
`warning` fails it with WARN (reported, not blocking).
"""

import json
import math
import os
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..memory import LARGE_BATCH_ROWS, release_freed_memory
from ..settings import EXPECTATIONS_DIR

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

if TYPE_CHECKING:
    import great_expectations as gx

# GX is imported where it is used, not with the definitions: the import takes about 2 s, which
# every process that loads the code location paid (the UI's code server, the weekly jobs that
# validate nothing); a daily run pays it in its first suite.


@dataclass
class SuiteOutcome:
    suite: str
    rows: int
    critical_failures: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    evaluated: int = 0
    docs_path: str | None = None

    @property
    def passed(self) -> bool:
        return not self.critical_failures and not self.warnings

    @property
    def blocking(self) -> bool:
        return bool(self.critical_failures)

    def describe(self) -> str:
        if self.passed:
            return f"{self.suite}: all {self.evaluated} expectations met on {self.rows} rows"
        parts = [f"{f['expectation']}({f.get('column') or ''}): {f['unexpected']} unexpected"
                 + (f" [{f['why']}]" if f.get("why") else "") for f in self.critical_failures + self.warnings]
        return f"{self.suite}: " + "; ".join(parts)


def suite_text(name: str) -> str:
    return (EXPECTATIONS_DIR / f"{name}.json").read_text()


def suite_definition(name: str) -> dict:
    return json.loads(suite_text(name))


def suite_columns(name: str) -> list[str]:
    """The columns a suite's expectations name, in first-use order: a batch needs no others."""
    cols: list[str] = []
    for e in suite_definition(name)["expectations"]:
        kw = e["kwargs"]
        for c in [kw.get("column"), kw.get("column_A"), kw.get("column_B"), *kw.get("column_list", [])]:
            if c and c not in cols:
                cols.append(c)
    return cols


def build_suite(name: str, d: dict | None = None) -> "gx.ExpectationSuite":
    """The GX suite of expectations/<name>.json (or of its parsed text `d`)."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    d = d or suite_definition(name)
    expectations = [
        ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"], meta=e.get("meta") or {},
                                 severity=e.get("severity", "critical")).to_domain_obj()
        for e in d["expectations"]
    ]
    return gx.ExpectationSuite(name=d["name"], expectations=expectations)


# One GX context per store, not made for use from two threads at once (its stores write files,
# its data source is updated per suite): suites that run side by side in one process
# (orchestration/executor.py) validate one after the other, their queries still overlap.
_GX_LOCK = threading.RLock()

# Data Docs index: the latest validations only. Rendering the index reads every result it lists,
# so an unbounded index makes each day's render slower than the last (65 results: 1.4 s; a year of
# daily runs holds ~5,000). Every result keeps its own page, which the check links to.
DOCS_INDEX_VALIDATIONS = 30


@cache
def _context(gx_root: str | None):
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.execution_engine import pandas_execution_engine

    # GX fingerprints every pandas batch under 1 GB (an md5 of the whole frame, kept as a marker of
    # the stored result); nothing reads it, and it took half of the fct suite of a 1M-loan day (the
    # 730k rows: 1.5 s). No batch is fingerprinted.
    pandas_execution_engine.HASH_THRESHOLD = 0

    ctx = gx.get_context(mode="file", project_root_dir=gx_root) if gx_root else gx.get_context(mode="ephemeral")
    if gx_root:
        for name, site in ctx.list_data_docs_sites().items():
            index = dict(site.get("site_index_builder") or {"class_name": "DefaultSiteIndexBuilder"})
            if index.get("validation_results_limit") != DOCS_INDEX_VALIDATIONS:
                index["validation_results_limit"] = DOCS_INDEX_VALIDATIONS
                ctx.update_data_docs_site(name, {**site, "site_index_builder": index})
    # no progress bars in run logs
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return ctx


def _site(gx_root: Path) -> Path:
    return Path(gx_root) / "gx" / "uncommitted" / "data_docs" / "local_site"


def docs_index(gx_root: Path) -> Path:
    return _site(gx_root) / "index.html"


def _stored_results(gx_root: Path) -> Path:
    return Path(gx_root) / "gx" / "uncommitted" / "validations"


def _page(gx_root: Path, result_key: tuple) -> Path:
    """The Data Docs page of a stored validation: the site mirrors the result store's layout
    (suite / run name / run time / batch)."""
    return _site(gx_root).joinpath("validations", *result_key[:-1], f"{result_key[-1]}.html")


def render_data_docs(gx_root: Path) -> int:
    """Render the page of every stored validation that has none yet, and the index, in one site
    build. GX compiles its page templates once per build (about 0.3 s), so the suites of a run store
    their results and the run renders them together; a run that stopped early leaves its pages to
    the next render. GX renders pages for the latest DOCS_INDEX_VALIDATIONS results only: a backlog
    older than those keeps its stored results, without pages. Returns the number of pages rendered."""
    results = _stored_results(gx_root)
    keys = [p.relative_to(results).with_suffix("").parts for p in results.rglob("*.json")]
    latest = sorted(keys, key=lambda key: key[-2], reverse=True)[:DOCS_INDEX_VALIDATIONS]  # by run time
    pending = [key for key in latest if not _page(gx_root, key).exists()]
    if not pending:
        return 0
    with _GX_LOCK:
        _build_pages(gx_root, pending)
    return len(pending)


def _build_pages(gx_root: Path, pending: list[tuple]) -> None:
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    ids = [ValidationResultIdentifier.from_tuple(key) for key in pending]
    suites = [ExpectationSuiteIdentifier(name=name) for name in sorted({key[0] for key in pending})]
    _context(str(gx_root)).build_data_docs(resource_identifiers=ids + suites)


_CHECKPOINTS: dict[tuple, tuple[str, "gx.Checkpoint"]] = {}  # (gx_root, suite) -> (suite text, checkpoint)


def _checkpoint(gx_root: str | None, name: str, definition: str) -> "gx.Checkpoint":
    """Suite `name` (its file's text: `definition`) with its data asset, validation and checkpoint
    in the context: stored again only when the suite's text changed, not for every batch (about
    0.1 s a suite)."""
    kept = _CHECKPOINTS.get((gx_root, name))
    if kept and kept[0] == definition:
        return kept[1]
    checkpoint = _store_checkpoint(_context(gx_root), name, json.loads(definition))
    _CHECKPOINTS[(gx_root, name)] = (definition, checkpoint)
    return checkpoint


def _store_checkpoint(ctx, name: str, definition: dict) -> "gx.Checkpoint":
    import great_expectations as gx

    try:  # one data source for every suite; replacing it would drop the assets of earlier ones
        source = ctx.data_sources.get("arrears")
    except KeyError:
        source = ctx.data_sources.add_pandas("arrears")
    try:
        asset = source.get_asset(name)
    except LookupError:
        asset = source.add_dataframe_asset(name)
    try:
        batch_def = asset.get_batch_definition("whole")
    except KeyError:
        batch_def = asset.add_batch_definition_whole_dataframe("whole")
    suite = ctx.suites.add_or_update(build_suite(name, definition))
    validation = ctx.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=f"{name}__validation", data=batch_def, suite=suite))
    return ctx.checkpoints.add_or_update(
        gx.Checkpoint(name=f"{name}__checkpoint", validation_definitions=[validation], actions=[],
                      result_format={"result_format": "SUMMARY"}))


def run_suite(df: pd.DataFrame, name: str, parameters: dict | None = None,
              gx_root: Path | None = None) -> SuiteOutcome:
    """Validate `df` against suite `name`; with gx_root, store the result there. Its Data Docs page
    is rendered at once when the suite fails (the run may stop here), else with the run's other
    results by render_data_docs."""
    with _GX_LOCK:
        return _validate(df, name, parameters, gx_root)


def _validate(df: pd.DataFrame, name: str, parameters: dict | None, gx_root: Path | None) -> SuiteOutcome:
    checkpoint = _checkpoint(str(gx_root) if gx_root else None, name, suite_text(name))
    run = checkpoint.run(batch_parameters={"dataframe": df}, expectation_parameters=parameters or {})
    result_id, result = next(iter(run.run_results.items()))
    outcome = SuiteOutcome(suite=name, rows=len(df), evaluated=len(result.results))
    for r in result.results:
        if r.success:
            continue
        cfg = r.expectation_config
        failure = {
            "expectation": cfg.type,
            "column": cfg.kwargs.get("column"),
            "unexpected": r.result.get("unexpected_count", r.result.get("observed_value")),
            "sample": [str(v) for v in (r.result.get("partial_unexpected_list") or [])[:5]],
            "why": (cfg.meta or {}).get("why", ""),
        }
        if r.exception_info and r.exception_info.get("raised_exception"):
            failure["unexpected"] = "error: " + str(r.exception_info.get("exception_message"))[:200]
        (outcome.critical_failures if str(cfg.severity.value) == "critical" else outcome.warnings).append(failure)
    if gx_root:
        outcome.docs_path = str(_page(gx_root, result_id.to_tuple()))
        if not outcome.passed:
            render_data_docs(gx_root)
    return outcome


SLICE_ROWS = 1_000_000  # rows per pandas batch: bounds memory on a first load of a large book


def slice_column(name: str) -> str:
    """The suite's key column (of its uniqueness expectation): rows are sliced by its hash, so a
    duplicate key always lands in one slice and uniqueness stays exact across slices."""
    for e in suite_definition(name)["expectations"]:
        kwargs = e.get("kwargs", {})
        if e["type"] == "expect_column_values_to_be_unique":
            return kwargs["column"]
        if e["type"] == "expect_compound_columns_to_be_unique":
            return kwargs["column_list"][0]
    raise ValueError(f"suite {name} has no uniqueness expectation to slice by")


def run_suite_on_query(con, sql: str, params: list, name: str, gx_root: Path | None = None,
                       slice_rows: int = SLICE_ROWS) -> SuiteOutcome:
    """run_suite on the rows of a DuckDB query, in slices of at most about `slice_rows` rows
    (every expectation is per row except uniqueness, which the slicing keeps exact)."""
    total = con.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()[0]
    if total >= LARGE_BATCH_ROWS:
        # a large load (a first load) is read and validated by one suite at a time: with suites side
        # by side, two batches of up to slice_rows rows would be in memory at once
        with _GX_LOCK:
            return _validate_query(con, sql, params, name, gx_root, slice_rows, total)
    return _validate_query(con, sql, params, name, gx_root, slice_rows, total)


def _validate_query(con, sql: str, params: list, name: str, gx_root: Path | None, slice_rows: int,
                    total: int) -> SuiteOutcome:
    slices = max(1, math.ceil(total / slice_rows))
    if slices == 1:
        outcome = run_suite(con.execute(sql, params).df(), name, gx_root=gx_root)
        if total >= LARGE_BATCH_ROWS:  # a daily batch is small: no collection pass needed
            release_freed_memory()
        return outcome
    key = slice_column(name)
    merged = None
    for i in range(slices):
        df = con.execute(f"SELECT * FROM ({sql}) WHERE hash({key}) % {slices} = {i}", params).df()
        merged = _merge(merged, run_suite(df, name, gx_root=gx_root))
        del df
        release_freed_memory()
    return merged


def _merge(a: SuiteOutcome | None, b: SuiteOutcome) -> SuiteOutcome:
    if a is None:
        return b

    def combine(x: list[dict], y: list[dict]) -> list[dict]:
        out = {(f["expectation"], f["column"]): dict(f) for f in x}
        for f in y:
            k = (f["expectation"], f["column"])
            if k not in out:
                out[k] = dict(f)
                continue
            if isinstance(out[k]["unexpected"], int) and isinstance(f["unexpected"], int):
                out[k]["unexpected"] += f["unexpected"]
            out[k]["sample"] = (out[k]["sample"] + f["sample"])[:5]
        return list(out.values())

    return SuiteOutcome(suite=a.suite, rows=a.rows + b.rows, evaluated=b.evaluated,
                        critical_failures=combine(a.critical_failures, b.critical_failures),
                        warnings=combine(a.warnings, b.warnings), docs_path=b.docs_path or a.docs_path)
