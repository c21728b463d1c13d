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
