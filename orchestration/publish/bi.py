"""Publishing the marts to BI: `$ARREARS_HOME/bi/arrears.duckdb`, schema `marts`.

DuckDB locks a database file per process, so BI readers must never open the
file the pipeline writes. Each published day's rows are written once to an
immutable Parquet file; `bi/arrears.duckdb` is a small catalog of views over
those files plus the list of them (`_publish.files`). Publishing writes a new
catalog beside the old one and renames it into place: a reader sees the last
published day in full or the one before, never half a day, and never waits.
The cost of a day is that day's rows, not the history.
"""

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ..extract.load import q
from ..faults import crash_point

# Superseded Parquet files stay this long for readers still on an older catalog.
GRACE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class PublishedMart:
    name: str
    date_column: str | None  # rows replaced per business date; None: whole table replaced


def _current_files(catalog: Path) -> dict[tuple[str, str], str]:
    """The published files the catalog lists. The views need absolute paths (a reader resolves a
    relative one against its own working directory), so a home that was moved or copied lists
    files of the old place: those are taken from the same place under this catalog's data/."""
    if not catalog.exists():
        return {}
    with duckdb.connect(str(catalog), read_only=True) as con:
        listed = con.execute("SELECT mart, part, path FROM _publish.files").fetchall()
    data_dir = catalog.parent / "data"
    files = {}
    for mart, part, path in listed:
        here = data_dir / mart / Path(path).name
        files[(mart, part)] = str(here) if not os.path.exists(path) and here.exists() else path
    return files


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(warehouse: duckdb.DuckDBPyConnection, bi_db: Path, business_date: str,
            marts: list[PublishedMart]) -> dict[str, int]:
    """Copy `business_date`'s rows of each mart from the warehouse into the BI catalog, atomically."""
    data_dir = bi_db.parent / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    files = _current_files(bi_db)
    tag = uuid.uuid4().hex[:12]
    rows = {}
    for mart in marts:
        where = f"WHERE {mart.date_column} = DATE {q(business_date)}" if mart.date_column else ""
        part = business_date if mart.date_column else "all"
        out_dir = data_dir / mart.name
        out_dir.mkdir(exist_ok=True)
        path = out_dir / f"{part}__{tag}.parquet"
        tmp = path.with_suffix(".parquet.tmp")
        rows[mart.name] = warehouse.execute(f"SELECT count(*) FROM marts.{mart.name} {where}").fetchone()[0]
        _supersede(files.pop((mart.name, part), None))
        if mart.date_column and rows[mart.name] == 0:
            continue
        warehouse.execute(f"COPY (SELECT * FROM marts.{mart.name} {where}) TO {q(str(tmp))} (FORMAT parquet)")
        _fsync(tmp)
        os.replace(tmp, path)
        files[(mart.name, part)] = str(path)

    tmp_db = bi_db.with_name(f".{bi_db.name}.{tag}.tmp")
    with duckdb.connect(str(tmp_db)) as con:
        con.execute("CREATE SCHEMA _publish")
        con.execute("CREATE TABLE _publish.files (mart VARCHAR, part VARCHAR, path VARCHAR)")
        con.executemany("INSERT INTO _publish.files VALUES (?, ?, ?)", [[m, k, p] for (m, k), p in sorted(files.items())])
        con.execute("CREATE SCHEMA marts")
        for mart in marts:
            paths = sorted(p for (m, _), p in files.items() if m == mart.name)
            if paths:
                listing = "[" + ", ".join(q(p) for p in paths) + "]"
                con.execute(f"CREATE VIEW marts.{mart.name} AS SELECT * FROM read_parquet({listing})")
            else:  # nothing published yet: an empty table of the right shape
                cols = warehouse.execute(f"DESCRIBE marts.{mart.name}").fetchall()
                ddl = ", ".join(f"{c[0]} {c[1]}" for c in cols)
                con.execute(f"CREATE TABLE marts.{mart.name} ({ddl})")
        con.execute("CHECKPOINT")
    _fsync(tmp_db)
    crash_point("before_catalog_swap")
    os.replace(tmp_db, bi_db)
    _collect_garbage(data_dir, set(files.values()))
    return rows


def _supersede(path: str | None) -> None:
    """Start the grace period of a file that the new catalog no longer lists."""
    if path and os.path.exists(path):
        os.utime(path)


def _collect_garbage(data_dir: Path, live: set[str]) -> None:
    now = time.time()
    for path in data_dir.glob("*/*.parquet*"):
        if str(path) not in live and now - path.stat().st_mtime > GRACE_SECONDS:
            path.unlink(missing_ok=True)
    for tmp in data_dir.parent.glob(".*.tmp"):  # catalogs of killed runs
        if now - tmp.stat().st_mtime > 3600:
            tmp.unlink(missing_ok=True)
