"""The Dagster instance `arrears` prepares: its dagster.yaml and the pooled SQLite event log."""

import os
import shutil

import dagster as dg

from orchestration.cli import _prepare_instance
from orchestration.event_log import PooledSqliteEventLogStorage


@dg.asset(partitions_def=dg.DailyPartitionsDefinition(start_date="2026-03-01"),
          check_specs=[dg.AssetCheckSpec("positive", asset="figure")])
def figure():
    yield dg.Output(1, metadata={"rows": 1})
    yield dg.AssetCheckResult(check_name="positive", passed=True)


def test_runs_are_recorded_through_the_pooled_event_log_and_a_moved_home_is_rewritten(arrears_home, monkeypatch):
    _prepare_instance()
    dagster_home = os.environ["DAGSTER_HOME"]
    text = open(os.path.join(dagster_home, "dagster.yaml")).read()
    assert f"base_dir: {os.path.realpath(dagster_home)}/history/runs" in text
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        for day in ("2026-03-01", "2026-03-02"):
            assert dg.materialize([figure], instance=instance, partition_key=day).success
        event = instance.get_latest_materialization_event(dg.AssetKey("figure"))
        assert event.asset_materialization.partition == "2026-03-02"
        assert event.asset_materialization.metadata["rows"].value == 1
        check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey("figure"), "positive")])
        assert list(check.values())[0].status.value == "SUCCEEDED"
        runs = instance.get_runs()
        assert len(runs) == 2 and len(instance.all_logs(runs[0].run_id)) > 5

    # a copied home (the bench starts from copies) gets its own path; the old runs are there
    moved = arrears_home.parent / "moved"
    shutil.copytree(dagster_home, moved)
    monkeypatch.setenv("DAGSTER_HOME", str(moved))
    _prepare_instance()
    assert f"base_dir: {os.path.realpath(moved)}/history/runs" in (moved / "dagster.yaml").read_text()
    with dg.DagsterInstance.get() as instance:
        assert len(instance.get_runs()) == 2
        assert instance.get_latest_materialization_event(dg.AssetKey("figure")).asset_materialization.partition == "2026-03-02"

    # a dagster.yaml without our header line is someone's own: left alone
    (moved / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    _prepare_instance()
    assert (moved / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"
