"""The code location loads as the UI loads it: every asset grouped and described, one daily job and schedule."""

import dagster as dg


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
