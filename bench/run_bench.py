"""Benchmarks at 100k and 1M loans: `python bench/run_bench.py --sizes 100000 1000000`.

For each size: simulate 15 months, run the first full load for 2026-03-28 (through
Dagster), advance the source day by day and run the daily job for each of the
last three days (an ordinary day; the 30-day mark of February's month-end, which adds
its outcome snapshot and training rows; the month-end; through Dagster) and time each
step (scoring is its risk_scores step; the step table shows the three days), time
weekly retraining (job risk_model_weekly) and warehouse maintenance (job warehouse_maintenance_weekly),
and the DPD/bucket SQL on its own against
the pandas baseline: the daily query (the previous date's state carried forward, as the daily
run does) and the same model from scratch (a first build or a backfill).
Prints a table and writes bench/results/bench.json. Peak memory is the peak RSS of
the process that ran the step (dbt's own process included for dbt steps).
"""

import argparse
import json
import os
import tempfile
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
START, END = date(2025, 1, 1), date(2026, 3, 31)


RESULT = "BENCH_RESULT "


def _child(code: str, env: dict) -> dict:
    """Run Python code in a fresh process; returns its JSON result, wall time and peak RSS
    (the largest process of the step: the Python process or a dbt process it waited for)."""
    # Written pages of the previous step (a copied 5 GB home, the simulator's source) are flushed
    # first: else the kernel writes them back during the timed step (measured: +3 s on a 1M day).
    os.sync()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=out, stderr=err, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(err.read()[-4000:])
        # the result follows the marker (a library may print to stdout before or after it, even
        # on the same line)
        text = out.read()
        if RESULT not in text:
            raise RuntimeError(f"no result printed; stdout ends with: {text[-2000:]!r}")
        result = json.loads(text.rsplit(RESULT, 1)[1].splitlines()[0])
    result.update(wall_s=round(wall, 2), peak_rss_mb=round(usage.ru_maxrss / 1024, 1))
    return result


RUN_DAY = """
import json, sys
from orchestration.cli import _prepare_instance, execute
_prepare_instance()
from dagster import DagsterInstance
with DagsterInstance.get() as instance:
    r = execute(instance, {job!r}, {day!r}, log_level="ERROR")
    steps = {{}}
    for e in instance.all_logs(r.run_id):
        ev = e.dagster_event
        if ev and ev.event_type_value == "STEP_SUCCESS":
            steps[ev.step_key] = round(ev.event_specific_data.duration_ms / 1000, 2)
print("BENCH_RESULT " + json.dumps({{"success": r.success, "steps": steps}}))
"""

# A copied home has another warehouse path, which is part of dbt's profile: its first dbt run would
# parse the whole project (2-3 s at 1M loans), a cost a home that stays in place pays once. Parse
# it once, untimed, as dagster-dbt runs dbt (from the project folder), and keep the result where
# the daily runs look for it (as the dbt asset keeps each invocation's: orchestration.dbt).
REPARSE = """
import subprocess, sys, tempfile
from pathlib import Path
from orchestration import settings
settings.apply_defaults()  # dbt on PATH, should the project need parsing on import
from orchestration.dbt import _keep_partial_parse
with tempfile.TemporaryDirectory() as target:
    subprocess.run([str(Path(sys.executable).parent / "dbt"), "parse", "--project-dir", ".", "--profiles-dir", ".",
                    "--target-path", target, "--quiet"], cwd="dbt_project", check=True, capture_output=True)
    _keep_partial_parse(Path(target))
print("BENCH_RESULT {}")
"""

DPD_STEP = """
import json, subprocess, sys, time, duckdb, os
from pathlib import Path
sys.path.insert(0, "bench")
from baseline_dpd import load_raw, loan_state
day, previous_day = "{day}", "{previous_day}"
home = Path(os.environ["ARREARS_HOME"])
STATE = "intermediate.int_loan_state_on_date"
WATERMARKS = "ledger_known_until, schedule_loaded_until, loans_loaded_until"


def compiled(business_date, carry=True):
    target = home / f"bench_target_{{business_date}}_{{carry}}"
    subprocess.run([str(Path(sys.executable).parent / "dbt"), "compile", "--select", "int_loan_state_on_date",
                    "--vars", json.dumps({{"business_date": business_date, "carry_state_forward": carry}}),
                    "--project-dir", "dbt_project", "--profiles-dir", "dbt_project", "--target-path", str(target),
                    "--quiet"], check=True, capture_output=True)
    return next(target.rglob("int_loan_state_on_date.sql")).read_text()


def best_of_3(con, sql):
    best = 1e9
    for _ in range(3):
        t = time.perf_counter()
        con.execute("CREATE OR REPLACE TEMP TABLE s AS " + sql)
        con.execute("CREATE OR REPLACE TEMP TABLE b AS SELECT s.loan_id, s.dpd, k.bucket FROM s "
                    "JOIN staging.delinquency_buckets k ON s.dpd >= k.dpd_from AND (k.dpd_to IS NULL OR s.dpd <= k.dpd_to) "
                    "WHERE s.is_on_book")
        best = min(best, time.perf_counter() - t)
    return best


# The daily step carries the previous business date's state forward: put that state (computed
# from scratch, as known now) in the table, time the day's query against it, then put the day back.
sql_previous, sql_day, sql_full = compiled(previous_day), compiled(day), compiled(day, carry=False)
con = duckdb.connect(os.environ["ARREARS_WAREHOUSE"])
con.execute(f"CREATE TEMP TABLE kept AS SELECT * FROM {{STATE}}")
con.execute(f"CREATE OR REPLACE TABLE {{STATE}} AS " + sql_previous)
carried = best_of_3(con, sql_day)
rows = con.execute("SELECT count(*) FROM b").fetchone()[0]
differs = con.execute(f"SELECT count(*) FROM (SELECT * EXCLUDE ({{WATERMARKS}}) FROM s "
                      f"EXCEPT SELECT * EXCLUDE ({{WATERMARKS}}) FROM kept)").fetchone()[0]
full = best_of_3(con, sql_full)
con.execute(f"CREATE OR REPLACE TABLE {{STATE}} AS SELECT * FROM kept")
raw = load_raw(con)
con.close()
t = time.perf_counter()
base = loan_state(raw, __import__("datetime").date.fromisoformat(day))
pandas_s = time.perf_counter() - t
print("BENCH_RESULT " + json.dumps({{"dpd_sql_s": round(carried, 3), "dpd_full_sql_s": round(full, 3), "rows": rows,
                  "rows_differing_from_the_run": differs, "pandas_s": round(pandas_s, 2), "pandas_rows": len(base)}}))
"""


def bench_size(n: int, home: Path, skip_baseline: bool, first_load_only: bool = False,
               first_load_from: Path | None = None) -> dict:
    env = {**os.environ, "ARREARS_HOME": str(home)}
    for k in ("ARREARS_SOURCE_URL", "ARREARS_PAYMENTS_DIR", "ARREARS_OPS_URL", "ARREARS_WAREHOUSE", "DAGSTER_HOME"):
        env.pop(k, None)
    env["ARREARS_WAREHOUSE"] = str(home / "warehouse" / "arrears.duckdb")
    res = {"loans": n}
    first_day, ordinary_day, snapshot_day = (date.fromordinal(END.toordinal() - k).isoformat() for k in (3, 2, 1))
    sim = f"""
import json
from datetime import date
from pathlib import Path
from orchestration.simulator import simulate
print("BENCH_RESULT " + json.dumps(simulate(Path("{home}/source"), {n}, date(2025, 1, 1), date(2026, 3, 31), 7, until=date.fromisoformat("{{u}}"))))
"""
    if first_load_from:
        # a home as --first-load-only left it: its figures are in bench_first_load.json
        home.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-a", str(first_load_from), str(home)], check=True)
        res.update(json.loads((home / "bench_first_load.json").read_text()))
        _child(REPARSE, env)
    else:
        res["simulate_15_months"] = _child(sim.replace("{u}", first_day), env)
        res["first_full_load"] = _child(RUN_DAY.format(job="arrears_daily", day=first_day), env)
        (home / "bench_first_load.json").write_text(json.dumps(res))
    if first_load_only:
        return res
    # An ordinary day (2026-03-29); 2026-03-30, the 30-day mark of February's month-end (its outcome
    # snapshot and its training rows are added); the month-end 2026-03-31, which also builds the
    # month-end snapshot and the monthly marts (roll, cure, vintage, recovery, strategy outcomes).
    res["advance_source_one_day"] = _child(sim.replace("{u}", ordinary_day), env)
    res["daily_run"] = _child(RUN_DAY.format(job="arrears_daily", day=ordinary_day), env)
    _child(sim.replace("{u}", snapshot_day), env)
    res["snapshot_day_run"] = _child(RUN_DAY.format(job="arrears_daily", day=snapshot_day), env)
    _child(sim.replace("{u}", END.isoformat()), env)
    res["month_end_run"] = _child(RUN_DAY.format(job="arrears_daily", day=END.isoformat()), env)
    # Weekly retraining (unpartitioned job): reads the matured month-end snapshots, fits both
    # candidates, calibrates, compares with the champion on the out-of-time window.
    res["retraining"] = _child(RUN_DAY.format(job="risk_model_weekly", day=None), env)
    # Weekly maintenance (Sundays, before the daily run): the loan-ordered tables the daily runs
    # appended to rewritten in loan order.
    res["warehouse_maintenance"] = _child(RUN_DAY.format(job="warehouse_maintenance_weekly", day=None), env)
    if not skip_baseline:
        res["dpd_step"] = _child(DPD_STEP.format(day=END.isoformat(), previous_day=snapshot_day), env)
    return res


def _figure(step: dict) -> str:
    """Wall time and peak memory of a step; a figure not recorded (a first load whose figures
    were taken from its Dagster run) shows as n/a."""
    wall, rss = step.get("wall_s"), step.get("peak_rss_mb")
    return (f"{wall:>9.1f} s" if wall is not None else f"{'n/a':>11}") + (f" {rss:>7.0f} MB" if rss is not None else f"{'n/a':>10}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--home", default="/tmp/arrears-bench")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--first-load-only", action="store_true", help="simulate and time the first full load only")
    ap.add_argument("--first-load-from", type=Path, nargs="+", metavar="HOME",
                    help="per size, a copy of a home left by --first-load-only: time the daily runs, retraining "
                         "and the DPD step from there (the first load's figures are the ones recorded in it)")
    args = ap.parse_args()
    if args.first_load_from and len(args.first_load_from) != len(args.sizes):
        ap.error("--first-load-from takes one home per size in --sizes")
    results = []
    for i, n in enumerate(args.sizes):
        home = Path(args.home) / f"n{n}"
        subprocess.run(["rm", "-rf", str(home)], check=True)
        r = bench_size(n, home, args.skip_baseline, args.first_load_only,
                       args.first_load_from[i] if args.first_load_from else None)
        results.append(r)
        print(json.dumps(r, indent=1), flush=True)
    if args.first_load_only:
        return
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "bench.json").write_text(json.dumps(results, indent=1))
    print(f"\n{'step':34} " + " ".join(f"{r['loans']:>22,}" for r in results))
    for step in ("simulate_15_months", "first_full_load", "advance_source_one_day", "daily_run", "snapshot_day_run",
                 "month_end_run", "retraining", "warehouse_maintenance"):
        print(f"{step:34} " + " ".join(_figure(r.get(step, {})) for r in results))
    steps = sorted({k for r in results for k in r["daily_run"]["steps"]})
    for s in steps:
        print(f"  {s[:32]:32} " + " ".join(" / ".join(f"{r[run]['steps'].get(s, float('nan')):6.2f}"
                                                      for run in ("daily_run", "snapshot_day_run", "month_end_run")) + " s"
                                           for r in results))
    for r in results:
        if "dpd_step" in r:
            d = r["dpd_step"]
            print(f"DPD+bucket SQL for one date, {r['loans']:,} loans: {d['dpd_sql_s']:.3f} s (daily: the previous "
                  f"date carried forward; from scratch {d['dpd_full_sql_s']:.3f} s); pandas baseline {d['pandas_s']:.1f} s; "
                  f"ratio {d['pandas_s'] / d['dpd_sql_s']:.0f}x (from scratch {d['pandas_s'] / d['dpd_full_sql_s']:.0f}x); "
                  f"rows differing from the run's own state: {d['rows_differing_from_the_run']}")
    if len(results) >= 2:
        a, b = results[0], results[-1]
        print(f"daily-run scaling {a['loans']:,} -> {b['loans']:,}: "
              f"{b['daily_run']['wall_s'] / a['daily_run']['wall_s']:.2f}x")


if __name__ == "__main__":
    main()
