"""Dagster resources: every location comes from the environment (settings.apply_defaults)."""

import os
import threading
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb


# The warehouse databases this process has open: path -> [database connection, connections in use].
# Steps of one run use the warehouse from several threads (orchestration/executor.py); each gets
# its own connection to one shared database, opened with the first and closed with the last, so
# the file is released whenever no step uses it (the dbt build opens it from its own process).
# Opening and closing under one lock: DuckDB refuses a file that another thread of the process is
# still closing ("Unique file handle conflict").
_OPEN: dict[str, list] = {}
_OPEN_LOCK = threading.Lock()


class Warehouse(dg.ConfigurableResource):
    """The pipeline's own DuckDB file. Only the running job opens it; BI reads bi/."""

    path: str

    @contextmanager
    def connect(self):
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with _OPEN_LOCK:
            database = _OPEN.get(self.path)
            if database is None:
                # Lower than dbt's limit (ARREARS_DUCKDB_MEMORY): this process also holds Python's own
                # data (extraction chunks, feature frames, the model), and its steps stay under 4 GB.
                limit = os.environ.get("ARREARS_DUCKDB_MEMORY_IN_PROCESS", "2GB")
                database = _OPEN[self.path] = [duckdb.connect(self.path, config={"memory_limit": limit}), 0]
            database[1] += 1
            con = database[0].cursor()
        try:
            yield con
        finally:
            con.close()
            with _OPEN_LOCK:
                database[1] -= 1
                if database[1] == 0:
                    del _OPEN[self.path]
                    database[0].close()


def table_exists(con, qualified: str) -> bool:
    """Whether schema.table exists in the DuckDB connection."""
    schema, name = qualified.split(".")
    return bool(con.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                            [schema, name]).fetchone())


class CoreBankingSource(dg.ConfigurableResource):
    """SQLAlchemy URL of the core-banking database (ARREARS_SOURCE_URL)."""

    url: str


class SettlementLanding(dg.ConfigurableResource):
    """Landing folder of the gateway's settlement files (ARREARS_PAYMENTS_DIR)."""

    path: str


class OpsDatabase(dg.ConfigurableResource):
    """SQLAlchemy URL of the operational database the collection system reads (ARREARS_OPS_URL)."""

    url: str


class ArrearsHome(dg.ConfigurableResource):
    """Where published marts, exports, reports and models live (ARREARS_HOME)."""

    path: str

    @property
    def bi_db(self) -> Path:
        return Path(self.path) / "bi" / "arrears.duckdb"
