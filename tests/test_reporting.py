"""Portfolio reporting on the hand-made book of test_dbt_models (plus a reversal), through real dbt
and real Dagster:

- every dbt unit test passes, the reporting marts' among them (each formula on hand-made rows);
- roll-rate rows from one bucket sum to 1 (count and balance) within 1e-9;
- int_loan_first_dpd30 (ever-dpd30 derived from effective dates) equals a brute-force
  evaluation of the loan_state macro on every single day;
- the warning checks and the management report run in Dagster: with a webhook on 127.0.0.1,
  a day with PAR30 above the line and up by more than 0.5 point on the month delivers exactly
  one alert per warning (two), a day without warning delivers none; the report is one
  self-contained HTML file with every chart.

PAR30 of this book on 2025-03-31 is ~97.5%, far above the default warning line 0.05 (policy
par30_warning_line); on 2025-02-28 it is 0 (nobody is 30 days late yet).
"""

import re
import subprocess

import dagster as dg
import duckdb
import pytest

import test_dbt_models as book
from orchestration.partitions import business_dates
from orchestration.reporting import management_report, reporting_checks
from orchestration.resources import ArrearsHome, Warehouse

M1, M2 = "2025-02-28", "2025-03-31"
REVERSAL = [  # F's installment-1 repayment is reversed with value date 03-20, booked 03-25
    ("tFr", "F", "reversal", 100, 90, 10, 0, "2025-03-20", "2025-03-25 10:00:00", "tF1", None, "2025-03-25 23:00:00")]


# mart_early_warnings is built by dbt above; in Dagster it is one output of the dbt assets, here
# a stand-in with the same key so its asset checks run after it, as in the daily job.
@dg.asset(key="mart_early_warnings", partitions_def=business_dates, group_name="marts_reporting")
def built_by_dbt() -> None:
    pass


@pytest.fixture
def built(tmp_path):
    """The hand book with every row of test_dbt_models, built by dbt for two month-ends."""
    warehouse = book.warehouse._fixture_function(tmp_path)
    with duckdb.connect(str(warehouse)) as con:
        book._insert_txns(con, book.TXNS_BOOKED_D2, "2025-03-11 23:00:00")
        con.executemany("INSERT INTO raw.loan_transactions VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", REVERSAL)
    book.build(tmp_path, M1)
    # The second build also runs every dbt unit test (their parent relations exist now).
    out = book.dbt(tmp_path, "build", "--vars", f"{{business_date: '{M2}'}}")
    assert "ERROR=0" in out
    return warehouse


def _first_dpd30_brute_force(tmp_path, warehouse, day):
    """First on-book day with dpd > 30, evaluating the loan_state macro on every day up to `day`."""
    days = (f"(select cast(d as date) as as_of_date from range(date '2025-01-01', date '{day}' + 1, "
            f"interval 1 day) as t(d))")
    inline = ("select loan_id, min(as_of_date) as first_dpd30_on from ({{ loan_state(\"" + days + "\") }}) "
              "where is_on_book and dpd > 30 group by loan_id")
    out = book.dbt(tmp_path, "compile", "--quiet", "--inline", inline, "--vars", f"{{business_date: '{day}'}}")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return sorted(con.execute(out.strip()).fetchall())


def test_reporting_marts_checks_alerts_and_report(tmp_path, built, alert_webhook):
    warehouse = built

    # Roll-rate rows from one bucket sum to 1 (count and balance).
    sums = book.rows(warehouse, """SELECT month_end, from_bucket, sum(roll_rate_count), sum(roll_rate_balance)
                                   FROM marts.mart_roll_rates GROUP BY ALL ORDER BY ALL""")
    assert [(str(m), b) for m, b, _, _ in sums] == [("2025-01-31", "M0"), ("2025-02-28", "M0"), ("2025-02-28", "M1")]
    for _, _, by_count, by_balance in sums:
        assert abs(by_count - 1) < 1e-9 and abs(by_balance - 1) < 1e-9

    # Ever-dpd30 without day-by-day recomputation equals the day-by-day truth.
    derived = sorted(book.rows(warehouse, "SELECT loan_id, first_dpd30_on FROM intermediate.int_loan_first_dpd30"))
    assert derived == _first_dpd30_brute_force(tmp_path, warehouse, M2)
    assert ("F", book.date(2025, 3, 25)) in derived  # reversal booked 03-25 makes installment 1 43 days late

    # Vintage, cohort 2025-01 (7 loans), MOB 2 = 03-31: B and L past 30 since 03-13, F since 03-25, W
    # written off; C's back-dated payment was known on 03-11 (not 30 days late yet), S settled.
    vintage = book.rows(warehouse, "SELECT mob, loans, ever_dpd30_rate FROM marts.mart_vintage "
                                   "WHERE cohort_month = DATE '2025-01-01' ORDER BY mob")
    assert [(m, n) for m, n, _ in vintage] == [(0, 7), (1, 7), (2, 7)]
    assert vintage[0][2] == 0.0 and vintage[2][2] == 4 / 7
    assert book.rows(warehouse, "SELECT rule FROM marts.mart_early_warnings WHERE as_of_date = ? ORDER BY rule",
                     [M2]) == [("par30_above_line",), ("par30_monthly_rise",)]

    # Dagster: the two warning checks and the report, with the webhook on a local server.
    home = tmp_path / "home"
    resources = {"warehouse": Warehouse(path=str(warehouse)), "arrears_home": ArrearsHome(path=str(home))}
    results = {}
    for day in (M1, M2):
        alert_webhook.clear()
        result = dg.materialize([built_by_dbt, management_report, *reporting_checks], partition_key=day,
                                resources=resources, raise_on_error=False)
        assert result.success
        results[day] = ([r["kind"] for r in alert_webhook], result.get_asset_check_evaluations())

    assert results[M1][0] == []
    assert all(e.passed for e in results[M1][1])
    kinds, evaluations = results[M2]
    assert sorted(kinds) == ["par30_above_line", "par30_monthly_rise"]  # exactly one alert per warning
    assert {e.check_name: (e.passed, e.severity) for e in evaluations} == {
        "par30_above_line": (False, dg.AssetCheckSeverity.WARN),
        "par30_monthly_rise": (False, dg.AssetCheckSeverity.WARN)}

    # The report: one self-contained file per business date, every chart drawn inline.
    for day in (M1, M2):
        assert (home / "reports" / f"management_report_{day}.html").exists()
    html = (home / "reports" / f"management_report_{M2}.html").read_text()
    for section in ("par-trend", "bucket-distribution", "roll-rates", "vintage", "recovery", "ptp", "warnings"):
        assert f"id='{section}'" in html or f'id="{section}"' in html, section
    charts = re.findall(r"<section id='([^']+)'><h2>.*?</section>", html, flags=re.S)
    assert len(charts) == 6 and html.count("<svg") == 6
    assert not re.search(r"(src|href)=[\"']https?:", html) and "<script" not in html
    assert "par30_monthly_rise" in html and "PAR30" in html
    report_meta = next(m.materialization.metadata for m in result.get_asset_materialization_events()
                       if m.asset_key == management_report.key)
    assert report_meta["warnings_raised"].value == 2 and report_meta["par_30"].value > 0.9
