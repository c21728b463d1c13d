"""`arrears`: simulate a source, run business dates through Dagster, run the demo, open the UI."""

import argparse
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

from . import settings

DAGSTER_YAML = """\
# Written by `arrears` (rewritten when it changes or the home moves; remove this line to keep edits).
# One run at a time (a single DuckDB warehouse file).
concurrency:
  runs:
    max_concurrent_runs: 1
telemetry:
  enabled: false
# Dagster's SQLite event log with its connections kept open (orchestration/event_log.py).
event_log_storage:
  module: orchestration.event_log
  class: PooledSqliteEventLogStorage
  config:
    base_dir: {runs_dir}
"""

# The embedded demo book: 15 months, the last month run day by day.
DEMO = {"loans": 20_000, "start": "2025-01-01", "end": "2026-03-31", "seed": 7}


def _dates(start: str, end: str) -> list[str]:
    a, b = date.fromisoformat(start), date.fromisoformat(end)
    if b < a:
        raise SystemExit(f"--end {end} is before --start {start}")
    return [(a + timedelta(days=i)).isoformat() for i in range((b - a).days + 1)]


def _prepare_instance() -> None:
    settings.apply_defaults()
    home = Path(os.environ["DAGSTER_HOME"])
    cfg = home / "dagster.yaml"
    text = DAGSTER_YAML.format(runs_dir=home.resolve() / "history" / "runs")
    # the file is ours while it starts with our header line: keep it current (a copied home has
    # another path); a file someone wrote or edited without that line is left alone
    current = cfg.read_text() if cfg.exists() else None
    if current is None or (current.startswith("# Written by `arrears`") and current != text):
        cfg.write_text(text)


def job_named(name: str):
    """Job `name` of the code location (what execute_job reconstructs)."""
    from .definitions import defs

    return defs.resolve_job_def(name)


def execute(instance, job_name: str, business_date: str | None = None, log_level: str = "INFO"):
    """Run job `job_name` (for a business date) in this process with the job's own executor, as a
    launched run does: arrears_daily runs independent steps side by side (orchestration/executor.py);
    JobDefinition.execute_in_process would run them one at a time."""
    import dagster as dg

    job = dg.build_reconstructable_job("orchestration.cli", "job_named", reconstructable_args=(job_name,))
    return dg.execute_job(job, instance, tags={"dagster/partition": business_date} if business_date else None,
                          run_config={"loggers": {"console": {"config": {"log_level": log_level}}}})


def run_dates(dates: list[str]) -> None:
    """Launch job arrears_daily for each date in order, recorded in the instance under ARREARS_HOME."""
    _prepare_instance()
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:
        for d in dates:
            result = execute(instance, "arrears_daily", d)
            if not result.success:
                failed = [e for e in result.all_events if e.is_step_failure]
                why = failed[0].step_failure_data.error.message.strip() if failed else "see the Dagster run log"
                print(f"arrears: business date {d} FAILED (run {result.run_id}): {why}", file=sys.stderr)
                raise SystemExit(1)
            print(f"arrears: business date {d} done (run {result.run_id})", flush=True)


def simulate(args) -> None:
    from .simulator import simulate as sim

    settings.apply_defaults()
    out = Path(args.out) if args.out else settings.simulator_dir()
    summary = sim(out, loans=args.loans, start=date.fromisoformat(args.start), end=date.fromisoformat(args.end),
                  seed=args.seed, until=date.fromisoformat(args.until) if args.until else None)
    print(f"arrears: simulated source in {out}: {summary}")


def headline(business_date: str) -> None:
    import duckdb

    bi = settings.bi_path()
    with duckdb.connect(str(bi), read_only=True) as con:
        days = con.execute("SELECT count(DISTINCT as_of_date), min(as_of_date), max(as_of_date) "
                           "FROM marts.fct_loan_delinquency_daily").fetchone()
        row = con.execute("""SELECT loans_on_book, outstanding_principal, overdue_loans, overdue_amount,
                                    overdue_rate_count, par_30, par_90
                             FROM marts.mart_portfolio_daily WHERE segment_type = 'all' AND as_of_date = ?""",
                          [business_date]).fetchone()
        buckets = con.execute("""SELECT bucket, count(*), sum(outstanding_principal) FROM marts.fct_loan_delinquency_daily
                                 WHERE as_of_date = ? GROUP BY bucket ORDER BY bucket""", [business_date]).fetchall()
    print(f"\nBI marts: {bi}  (schema marts; {days[0]} business dates {days[1]} .. {days[2]})")
    print(f"Portfolio on {business_date}: {row[0]:,} loans on book, outstanding principal {row[1]:,.2f} CNY, "
          f"{row[2]:,} overdue ({row[4]:.2%}), overdue amount {row[3]:,.2f} CNY, PAR30 {row[5]:.2%}, PAR90 {row[6]:.2%}")
    print("Buckets: " + ", ".join(f"{b} {n:,} loans / {p:,.2f}" for b, n, p in buckets))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="arrears", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("simulate", help="write a simulated core-banking source and settlement files")
    s.add_argument("--loans", type=int, default=DEMO["loans"])
    s.add_argument("--start", default=DEMO["start"])
    s.add_argument("--end", default=DEMO["end"])
    s.add_argument("--seed", type=int, default=DEMO["seed"])
    s.add_argument("--until", help="write the source as known at the end of this day (default: --end)")
    s.add_argument("--out", help="folder (default: $ARREARS_HOME/source)")

    r = sub.add_parser("run", help="process business dates through the Dagster job arrears_daily")
    r.add_argument("--date")
    r.add_argument("--start")
    r.add_argument("--end")

    d = sub.add_parser("demo", help="simulate the demo book and run every business date of its last month")
    d.add_argument("--loans", type=int, default=DEMO["loans"])

    sub.add_parser("ui", help="open the Dagster UI on this checkout (dagster dev -w workspace.yaml)")

    args = p.parse_args(argv)
    if args.cmd == "simulate":
        simulate(args)
    elif args.cmd == "run":
        if args.date and not (args.start or args.end):
            run_dates([args.date])
        elif args.start and args.end and not args.date:
            run_dates(_dates(args.start, args.end))
        else:
            p.error("give --date D, or --start A --end B")
    elif args.cmd == "demo":
        end = date.fromisoformat(DEMO["end"])
        first = end.replace(day=1).isoformat()
        simulate(argparse.Namespace(loans=args.loans, start=DEMO["start"], end=DEMO["end"], seed=DEMO["seed"],
                                    until=None, out=None))
        run_dates(_dates(first, end.isoformat()))
        headline(end.isoformat())
    elif args.cmd == "ui":
        _prepare_instance()
        os.execvp("dagster", ["dagster", "dev", "-w", str(settings.REPO_ROOT / "workspace.yaml")])


if __name__ == "__main__":
    main()
