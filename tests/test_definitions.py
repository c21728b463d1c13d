"""The code location loads as the UI loads it: every asset grouped and described, one daily job and schedule."""

import subprocess
import sys
from pathlib import Path

import dagster as dg

REPO = Path(__file__).resolve().parent.parent


def test_every_asset_is_grouped_and_described(arrears_home):
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = list(graph.get_all_asset_keys())
    assert len(keys) >= 20
    for key in keys:
        node = graph.get(key)
        assert node.group_name and node.group_name != "default", key
        assert node.description, key
    groups = {graph.get(k).group_name for k in keys}
    assert {"extract", "staging", "intermediate", "publish"} <= groups
    job = defs.resolve_job_def("arrears_daily")
    assert job.partitions_def is not None
    schedule = defs.resolve_schedule_def("arrears_daily_schedule")
    assert schedule.job_name == "arrears_daily"
    assert schedule.execution_timezone == "Asia/Shanghai"
    assert isinstance(defs.resolve_implicit_global_asset_job_def(), dg.JobDefinition)


def test_loading_the_definitions_leaves_great_expectations_to_the_run(arrears_home):
    """GX is imported by the run that validates (about 2 s), not by every process that loads the
    code location (the UI's code server, the weekly jobs); the first suite imports it."""
    code = ("import sys\nfrom orchestration.definitions import defs\n"
            "assert 'great_expectations' not in sys.modules, 'GX imported with the definitions'\n"
            "from orchestration.quality.gx_suites import run_suite\n"
            "import pandas as pd\n"
            "outcome = run_suite(pd.DataFrame({'product_id': ['P1'], 'product_type': ['cash']}), 'raw_loan_products')\n"
            "assert outcome.evaluated > 0, outcome\n"
            "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-3000:]


def test_the_daily_plan_checks_raw_data_before_dbt_runs_alone_and_scores_first(arrears_home):
    """Every check of a raw asset runs before the dbt build (its failures are in the day's
    mart_data_quality), the dbt build runs alone, and scoring leads the steps after it."""
    from dagster._core.execution.api import create_execution_plan

    from orchestration import settings
    from orchestration.definitions import defs
    from orchestration.executor import PRIORITY, runs_alone

    settings.apply_defaults()  # the resources' locations, as a run has them
    job = defs.resolve_job_def("arrears_daily")
    assert job.executor_def.name == "threaded_in_process"
    plan = create_execution_plan(job, tags={"dagster/partition": "2026-03-29"})
    deps = plan.get_executable_step_deps()
    raw_checks = {s.key for s in plan.steps if s.key.startswith("raw__") and s.key != "raw__gateway_settlements"}
    assert "raw__gateway_settlements_gateway_payments_posted" in raw_checks and len(raw_checks) == 9
    assert raw_checks <= set(deps["arrears_dbt_models"])
    alone = [s.key for s in plan.steps if runs_alone(s)]
    assert alone == ["arrears_dbt_models"]
    after_dbt = [s for s in plan.steps if "arrears_dbt_models" in deps.get(s.key, ())]
    first = max(after_dbt, key=lambda s: int(s.tags.get(PRIORITY, 0)))
    assert first.key == "risk_scores"
