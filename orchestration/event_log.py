"""Dagster's SQLite event log, with its database connections kept open.

Dagster's SqliteEventLogStorage creates an engine, checks the schema, connects and disposes for
every event it stores (and once more to ask whether the asset-check table exists). A daily run
records about 400 events (one per dbt model and test, and their outputs): at 10-25 ms each on
this machine that was several seconds of every run. This subclass keeps one engine per database
file (the run's own and the cross-run index) and remembers which tables exist; each event is
still written in its own transaction, committed as before. The instance uses it through
dagster.yaml (orchestration/cli.py writes it); the UI and the daemon read the same files.
"""

from collections import OrderedDict
from contextlib import contextmanager
from typing import Iterator

from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine

ENGINES_KEPT = 4  # the index and the newest runs' databases: a long-lived process runs many runs


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    def __init__(self, base_dir: str, inst_data=None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._tables: set[str] = set()
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> "PooledSqliteEventLogStorage":
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        engine = self._engines.pop(shard, None)
        if engine is None:
            # one connection kept (_connect holds the storage's lock while it is in use); schema
            # checks open a second one for a moment
            engine = create_engine(self.conn_string_for_shard(shard), pool_size=1, max_overflow=2,
                                   connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False})
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
        self._engines[shard] = engine
        while len(self._engines) > ENGINES_KEPT:
            _, old = self._engines.popitem(last=False)
            old.dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            with self._engine(shard).connect() as conn:
                with conn.begin():
                    yield conn

    def has_table(self, table_name: str) -> bool:
        # tables are never dropped while the storage is in use: a table seen once stays
        if table_name not in self._tables and super().has_table(table_name):
            self._tables.add(table_name)
        return table_name in self._tables

    def dispose(self) -> None:
        super().dispose()
        while self._engines:
            self._engines.popitem()[1].dispose()
