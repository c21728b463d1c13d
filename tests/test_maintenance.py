"""Weekly warehouse maintenance: the loan-ordered tables rewritten in loan order, through Dagster."""

import duckdb
import dagster as dg

from orchestration.maintenance import LOAN_ORDERED_TABLES


def test_weekly_job_rewrites_the_appended_tables_in_loan_order_and_keeps_every_row(arrears_home, monkeypatch):
    from orchestration.definitions import defs
    from orchestration.settings import warehouse_path

    warehouse = warehouse_path(arrears_home)
    monkeypatch.setenv("ARREARS_WAREHOUSE", str(warehouse))  # the job's Warehouse resource reads it
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE SCHEMA intermediate")
        # loan order from the first build, then two days of appended rows at the end
        con.execute("""CREATE TABLE intermediate.int_ledger_counted AS
                       SELECT * FROM (VALUES ('L1', DATE '2025-01-05', 10.00), ('L2', DATE '2025-01-03', 5.00),
                                             ('L1', DATE '2025-02-05', 7.00), ('L3', DATE '2025-02-01', 1.00),
                                             ('L2', DATE '2025-02-03', 2.50))
                       AS t(loan_id, counts_from, paid_delta)""")
        con.execute("""CREATE TABLE intermediate.int_installments_cumulated AS
                       SELECT * FROM (VALUES ('L2', 1, 100.00), ('L1', 2, 200.00), ('L1', 1, 100.00))
                       AS t(loan_id, installment_no, cum_due)""")
        before = {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall()) for t in LOAN_ORDERED_TABLES}

    job = defs.resolve_job_def("warehouse_maintenance_weekly")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance)
    assert result.success
    [materialization] = [e.materialization for e in result.get_asset_materialization_events()
                         if e.asset_key == dg.AssetKey(["maintenance", "loan_ordered_tables"])]
    assert materialization.metadata["rows_int_ledger_counted"].value == 5

    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("SET threads = 1")  # a plain scan returns the stored order
        assert con.execute("SELECT loan_id, counts_from::VARCHAR FROM intermediate.int_ledger_counted").fetchall() == [
            ("L1", "2025-01-05"), ("L1", "2025-02-05"), ("L2", "2025-01-03"), ("L2", "2025-02-03"), ("L3", "2025-02-01")]
        assert con.execute("SELECT loan_id, installment_no FROM intermediate.int_installments_cumulated").fetchall() == [
            ("L1", 1), ("L1", 2), ("L2", 1)]
        assert {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall()) for t in LOAN_ORDERED_TABLES} == before


def test_daily_job_leaves_maintenance_to_its_weekly_job(arrears_home):
    from orchestration.definitions import defs

    daily = defs.resolve_job_def("arrears_daily")
    keys = daily.asset_layer.selected_asset_keys if hasattr(daily, "asset_layer") else set()
    assert dg.AssetKey(["maintenance", "loan_ordered_tables"]) not in keys
    assert dg.AssetKey("int_ledger_counted") in keys
    schedule = defs.resolve_schedule_def("warehouse_maintenance_weekly_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 4 * * 0", "Asia/Shanghai")
