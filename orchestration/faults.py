"""Fault injection for the crash tests: `ARREARS_FAULT_INJECT=<point>` kills the process there.

Points: after_loans_loaded (mid-extraction), during_dbt (dbt running), before_catalog_swap
(publishing, Parquet written, catalog not yet renamed). Unset in normal operation.
"""

import os
import signal


def crash_point(point: str) -> None:
    if os.environ.get("ARREARS_FAULT_INJECT") == point:
        os.killpg(os.getpgrp(), signal.SIGKILL)  # like kill -9 of the run: dbt and its children too
