"""The GX Data Docs site of the day's validations, rendered once after publication."""

import dagster as dg

from ..partitions import business_dates
from ..resources import ArrearsHome
from .checks import gx_root
from .gx_suites import docs_index, render_data_docs


@dg.asset(
    key=["quality", "gx_data_docs"],
    group_name="quality",
    kinds={"great_expectations"},
    partitions_def=business_dates,
    deps=[dg.AssetKey(["bi", "arrears_duckdb"])],
    description="GX Data Docs (quality/gx/uncommitted/data_docs/local_site): a page for every stored "
                "validation and an index of the latest. The suites of a run only store their results; "
                "their pages are rendered here in one site build (a failing suite renders at once).",
)
def gx_data_docs(context: dg.AssetExecutionContext, arrears_home: ArrearsHome) -> dg.MaterializeResult:
    root = gx_root(arrears_home)
    pages = render_data_docs(root)
    context.log.info(f"GX Data Docs: {pages} validation pages rendered")
    return dg.MaterializeResult(metadata={"pages_rendered": pages,
                                          "index": dg.MetadataValue.url("file://" + str(docs_index(root)))})
