"""The daily job's executor (orchestration/executor.py) on small jobs: ready steps run side by
side, a RUNS_ALONE step runs with nothing beside it, failures and blocking checks behave as under
Dagster's in-process executor."""

import threading
import time

import dagster as dg
import pytest

from orchestration.executor import RUNS_ALONE, threaded_in_process_executor

SPANS: dict[str, tuple[float, float]] = {}
BARRIER = threading.Barrier(2, timeout=30)


def _timed(name: str, seconds: float) -> None:
    start = time.monotonic()
    time.sleep(seconds)
    SPANS[name] = (start, time.monotonic())


# two steps that can only both succeed when they run at the same time
@dg.asset
def scores() -> None:
    BARRIER.wait()


@dg.asset
def fct_suite() -> None:
    BARRIER.wait()


@dg.asset(deps=[scores, fct_suite])
def priority_list() -> None:
    _timed("priority_list", 0.01)


def _alone_assets(tag: bool) -> list:
    @dg.asset(op_tags={RUNS_ALONE: "true"} if tag else None)
    def dbt_build() -> None:
        _timed("dbt_build", 0.6)

    @dg.asset
    def extract_a() -> None:
        _timed("extract_a", 0.3)

    @dg.asset
    def extract_b() -> None:
        _timed("extract_b", 0.3)

    @dg.asset(deps=[dbt_build])
    def publish() -> None:
        _timed("publish", 0.3)

    @dg.asset(deps=[dbt_build])
    def report() -> None:
        _timed("report", 0.3)

    return [dbt_build, extract_a, extract_b, publish, report]


@dg.asset
def broken() -> None:
    raise ValueError("source table missing")


@dg.asset(deps=[broken])
def after_broken() -> None:
    SPANS["after_broken"] = (0.0, 0.0)


@dg.asset
def independent() -> None:
    _timed("independent", 0.2)


@dg.asset(check_specs=[dg.AssetCheckSpec("balances_reconcile", asset="marts", blocking=True)])
def marts():
    yield dg.MaterializeResult()
    yield dg.AssetCheckResult(check_name="balances_reconcile", passed=False, severity=dg.AssetCheckSeverity.ERROR)


@dg.asset(deps=[marts])
def bi() -> None:
    SPANS["bi"] = (0.0, 0.0)


def _job(name: str, assets: list):
    return dg.Definitions(assets=assets, jobs=[dg.define_asset_job(name, executor_def=threaded_in_process_executor)]
                          ).resolve_job_def(name)


def side_by_side_job():
    return _job("side_by_side", [scores, fct_suite, priority_list])


def alone_job():
    return _job("alone", _alone_assets(tag=True))


def untagged_job():
    return _job("untagged", _alone_assets(tag=False))


def failing_job():
    return _job("failing", [broken, after_broken, independent])


def gated_job():
    return _job("gated", [marts, bi])


@pytest.fixture
def instance():
    SPANS.clear()
    BARRIER.reset()
    with dg.instance_for_test() as instance:
        yield instance


def _run(define, instance):
    return dg.execute_job(dg.reconstructable(define), instance)


def _overlaps(a: str) -> list[str]:
    start, end = SPANS[a]
    return sorted(b for b, (s, e) in SPANS.items() if b != a and s < end and start < e)


def test_ready_steps_run_side_by_side(instance):
    # each step waits at a barrier for the other: run one after the other, both would time out
    result = _run(side_by_side_job, instance)
    assert result.success
    assert "priority_list" in SPANS


def test_a_step_that_runs_alone_has_nothing_beside_it(instance):
    result = _run(alone_job, instance)
    assert result.success
    assert set(SPANS) == {"dbt_build", "extract_a", "extract_b", "publish", "report"}
    assert _overlaps("dbt_build") == []
    # the others still pair up: the extracts before it, publish and report after it
    assert _overlaps("extract_a") == ["extract_b"]
    assert _overlaps("publish") == ["report"]


def test_without_the_tag_the_same_step_would_have_company(instance):
    # the control for the test above: the executor does run roots side by side
    assert _run(untagged_job, instance).success
    assert _overlaps("dbt_build") != []


def test_a_failed_step_fails_the_run_and_skips_what_depends_on_it(instance):
    result = _run(failing_job, instance)
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert [e.step_key for e in failures] == ["broken"]
    assert "ValueError: source table missing" in failures[0].step_failure_data.error.to_string()
    assert "after_broken" not in SPANS
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert started == {"broken", "independent"}
    # a step that does not depend on the failed one still ran
    assert "independent" in SPANS
    assert [e.step_key for e in result.all_events if e.is_step_success] == ["independent"]


def test_a_failed_blocking_check_stops_what_depends_on_its_asset(instance):
    result = _run(gated_job, instance)
    assert not result.success
    assert "bi" not in SPANS


@dg.asset
def slow_a() -> None:
    _started_and_sleep("slow_a")


@dg.asset
def slow_b() -> None:
    _started_and_sleep("slow_b")


@dg.asset(deps=[slow_a, slow_b])
def after_slow() -> None:
    pass


def _started_and_sleep(name: str) -> None:
    import os
    from pathlib import Path

    (Path(os.environ["MARKERS"]) / name).touch()
    time.sleep(3)


def slow_job():
    return _job("slow", [slow_a, slow_b, after_slow])


INTERRUPTED_RUN = """
import json, dagster as dg
from tests.test_executor import slow_job
with dg.instance_for_test() as instance:
    result = dg.execute_job(dg.reconstructable(slow_job), instance)
    run = instance.get_run_by_id(result.run_id)
    print(json.dumps({"success": result.success, "status": run.status.value,
                      "started": sorted(e.step_key for e in result.all_events if e.event_type_value == "STEP_START"),
                      "succeeded": sorted(e.step_key for e in result.all_events if e.is_step_success),
                      "why": [e.message for e in result.all_events if e.is_run_failure]}))
"""


def test_an_interrupted_run_lets_running_steps_finish_and_starts_no_more(tmp_path):
    import json
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    child = subprocess.Popen([sys.executable, "-c", INTERRUPTED_RUN], cwd=repo, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env={**os.environ, "MARKERS": str(tmp_path)})
    deadline = time.monotonic() + 60
    while not ((tmp_path / "slow_a").exists() and (tmp_path / "slow_b").exists()):
        assert time.monotonic() < deadline and child.poll() is None, child.communicate()
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    result = json.loads(out.strip().splitlines()[-1])
    # as under the in-process executor, an interrupt nobody asked for through Dagster is a failure
    why = result.pop("why")
    assert result == {"success": False, "status": "FAILURE", "started": ["slow_a", "slow_b"],
                      "succeeded": ["slow_a", "slow_b"]}, err[-3000:]
    assert len(why) == 1 and "Execution was interrupted unexpectedly" in why[0], why


def test_steps_side_by_side_open_and_close_the_warehouse_without_conflict(tmp_path):
    """Steps of one run connect to the warehouse from several threads, each opening and closing it.
    DuckDB alone refuses a file another thread is still closing ('Unique file handle conflict'):
    with plain duckdb.connect per step this loop failed in about half of its rounds."""
    from orchestration.resources import Warehouse

    warehouse = Warehouse(path=str(tmp_path / "warehouse.duckdb"))
    with warehouse.connect() as con:
        con.execute("CREATE TABLE t AS SELECT range AS x FROM range(1000)")
    errors: list[str] = []

    def step() -> None:
        try:
            for _ in range(1000):
                with warehouse.connect() as con:
                    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 1000
        except Exception as e:  # noqa: BLE001 - reported by the test
            errors.append(repr(e))

    for _ in range(5):
        threads = [threading.Thread(target=step) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    # released when the last step let go: another process could open the file now
    import duckdb

    duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True).close()
