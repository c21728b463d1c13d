"""kill -9 during extraction, dbt and publishing: published marts survive, a re-run equals an uninterrupted run."""

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb

from orchestration.simulator import simulate

BOOK = {"loans": 400, "start": date(2025, 1, 1), "end": date(2025, 5, 31), "seed": 5}
D0, D1 = "2025-05-30", "2025-05-31"
REPO = Path(__file__).resolve().parent.parent


def _run(home: Path, day: str, fault: str | None = None) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARREARS_", "DAGSTER_HOME"))}
    env.update(ARREARS_HOME=str(home), ARREARS_PII_KEY="test-pii-key")
    if fault:
        env["ARREARS_FAULT_INJECT"] = fault
    proc = subprocess.run([sys.executable, "-m", "orchestration.cli", "run", "--date", day], env=env, cwd=REPO,
                          capture_output=True, text=True, start_new_session=True, timeout=600)
    return proc.returncode


def _marts(home: Path) -> dict:
    """Every published mart's rows. Each home trains its own first model, whose version name carries its
    training time, so risk_scores are compared without model_version (the scores themselves must match)."""
    with duckdb.connect(str(home / "bi" / "arrears.duckdb"), read_only=True) as con:
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' ORDER BY 1").fetchall()]
        return {n: con.execute(f"SELECT * EXCLUDE (model_version) FROM marts.{n} ORDER BY ALL" if n == "risk_scores"
                               else f"SELECT * FROM marts.{n} ORDER BY ALL").fetchall() for n in names}


def test_crashes_leave_published_marts_and_rerun_matches(tmp_path):
    ref, crash = tmp_path / "ref", tmp_path / "crash"
    for home in (ref, crash):
        simulate(home / "source", **BOOK)
    assert _run(ref, D0) == 0 and _run(ref, D1) == 0
    expected = _marts(ref)
    assert len(expected["fct_loan_delinquency_daily"]) > 300

    assert _run(crash, D0) == 0
    published = _marts(crash)
    for point in ("after_loans_loaded", "during_dbt", "before_catalog_swap"):
        assert _run(crash, D1, fault=point) == -9, point  # killed
        assert _marts(crash) == published, point  # BI untouched and readable
    assert _run(crash, D1) == 0
    assert _marts(crash) == expected
