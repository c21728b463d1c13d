"""Extraction of the payment gateway's daily settlement files.

A file is (re)loaded when its bytes differ from the delivery loaded before
(sha256 in raw._settlement_files); the latest delivery of a day replaces the
earlier one's rows. A file whose size, mtime and ctime are those recorded when it
was last read is not read again: every delivery, even one that keeps the old
size and sets the old mtime back, writes or renames the file and so changes its
ctime, which no tool can set. The folder holds every day's file ever delivered
(455 files, about 2.5 s to read and hash at 1M loans): stat costs microseconds.
"""

import hashlib
import re
from datetime import date, datetime
from pathlib import Path

from .load import LoadResult, load_batch, q
from .schema import GATEWAY_SETTLEMENTS, SETTLEMENT_FILE_COLUMNS, create_raw_schema

FILE_RE = re.compile(r"^settlement_(\d{4}-\d{2}-\d{2})\.csv$")

FILES_DDL = """CREATE TABLE IF NOT EXISTS raw._settlement_files (
  file_name VARCHAR PRIMARY KEY, settlement_date DATE, sha256 VARCHAR, bytes BIGINT, loaded_at TIMESTAMP,
  file_stat VARCHAR)"""
# a table created before file_stat existed gets it (NULL: each file is hashed once more)
FILES_STAT_DDL = "ALTER TABLE raw._settlement_files ADD COLUMN IF NOT EXISTS file_stat VARCHAR"


def file_stat(path: Path) -> str:
    """What changes whenever a file is delivered again: size, mtime and ctime (nanoseconds)."""
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


class SettlementFileError(RuntimeError):
    """A settlement file that cannot be read as the contract says."""


def _settlement_day(path: Path) -> str:
    m = FILE_RE.match(path.name)
    try:
        date.fromisoformat(m.group(1))
    except ValueError:
        raise SettlementFileError(f"settlement file {path.name}: '{m.group(1)}' is not a calendar date") from None
    return m.group(1)


def _read_header(path: Path) -> list[str]:
    try:
        with path.open("r", encoding="utf-8", newline="") as f:
            first = f.readline()
    except (OSError, UnicodeDecodeError) as e:
        raise SettlementFileError(f"settlement file {path.name} is unreadable: {e}") from e
    return [h.strip().lstrip("\ufeff") for h in first.rstrip("\r\n").split(",")] if first else []


def extract_settlement_files(con, payments_dir: str, business_date: str,
                             loaded_at: datetime | None = None) -> dict[str, LoadResult]:
    create_raw_schema(con)
    con.execute(FILES_DDL)
    folder = Path(payments_dir)
    if not folder.is_dir():
        raise SettlementFileError(f"settlement landing folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if FILE_RE.match(p.name))
    con.execute(FILES_STAT_DDL)
    loaded = {name: (digest, stat) for name, digest, stat in
              con.execute("SELECT file_name, sha256, file_stat FROM raw._settlement_files").fetchall()}
    total = LoadResult(GATEWAY_SETTLEMENTS.name)
    files_loaded = []
    for path in files:
        stat = file_stat(path)  # before reading: a delivery during the read shows on the next run
        known_digest, known_stat = loaded.get(path.name, (None, None))
        if stat == known_stat:
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if known_digest == digest:  # the same bytes again (touched, copied): remember its stat
            con.execute("UPDATE raw._settlement_files SET file_stat = ? WHERE file_name = ?", [stat, path.name])
            continue
        day = _settlement_day(path)
        header = _read_header(path)
        if header != list(SETTLEMENT_FILE_COLUMNS):
            raise SettlementFileError(
                f"settlement file {path.name} has a wrong header: expected "
                f"{','.join(SETTLEMENT_FILE_COLUMNS)}, got {','.join(header) or '(empty file)'}"
            )
        con.execute("BEGIN TRANSACTION")
        try:
            cols = ", ".join(f"'{c}': 'VARCHAR'" for c in SETTLEMENT_FILE_COLUMNS)
            try:
                con.execute(f"""
                    CREATE OR REPLACE TEMP TABLE __file AS
                    SELECT * FROM read_csv({q(str(path))}, header = true, columns = {{{cols}}},
                                           auto_detect = false, quote = '"', escape = '"', strict_mode = true)
                """)
            except Exception as e:  # DuckDB's parser error names line and problem
                raise SettlementFileError(f"settlement file {path.name} is unreadable: {e}") from e
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE __batch_settlements AS
                SELECT {q(day)} AS settlement_date, {q(path.name)} AS file_name,
                       CAST(row_number() OVER () + 1 AS VARCHAR) AS line_no, *,
                       row_number() OVER () AS _ord
                FROM __file
            """)
            res = load_batch(
                con, GATEWAY_SETTLEMENTS, "__batch_settlements", source_label=path.name,
                business_date=business_date,
                extra_rules=[
                    ("NOT EXISTS (SELECT 1 FROM raw.loans l WHERE l.loan_id = t.loan_id)", "unknown_loan"),
                    ("t.amount <= 0", "non_positive_amount"),
                ],
                replace_where=f"settlement_date = DATE {q(day)}", loaded_at=loaded_at,
            )
            con.execute(
                "INSERT OR REPLACE INTO raw._settlement_files (file_name, settlement_date, sha256, bytes, loaded_at, "
                "file_stat) VALUES (?, ?, ?, ?, now()::TIMESTAMP, ?)",
                [path.name, day, digest, int(stat.split(":")[0]), stat],
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        files_loaded.append(path.name)
        for f in ("extracted", "inserted", "updated", "unchanged", "quarantined"):
            setattr(total, f, getattr(total, f) + getattr(res, f))
    total.files = files_loaded  # type: ignore[attr-defined]
    return {GATEWAY_SETTLEMENTS.name: total}
