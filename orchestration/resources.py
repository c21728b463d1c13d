"""Dagster resources: every location comes from the environment (settings.apply_defaults)."""

import os
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb


class Warehouse(dg.ConfigurableResource):
    """The pipeline's own DuckDB file. Only the running job opens it; BI reads bi/."""

    path: str

    @contextmanager
    def connect(self):
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # Lower than dbt's limit (ARREARS_DUCKDB_MEMORY): this process also holds Python's own data
        # (extraction chunks, feature frames, the model), and a step's whole process stays under 4 GB.
        limit = os.environ.get("ARREARS_DUCKDB_MEMORY_IN_PROCESS", "2GB")
        con = duckdb.connect(self.path, config={"memory_limit": limit})
        try:
            yield con
        finally:
            con.close()


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
