"""Check a batch of source rows against the row rules and load it into raw.

A batch arrives as an all-VARCHAR DuckDB table (`_ord` keeps source order).
Every row either lands, typed, in raw.<table> or in raw.quarantine with a
reason code (business_rules.md section 9); nothing is dropped silently.
Re-delivered identical rows are recognised and skipped, so re-running a day
adds nothing twice.
"""

from dataclasses import dataclass
from datetime import datetime

from .schema import TableSpec

DATE_RE = r"^\d{4}-\d{2}-\d{2}$"
TS_RE = r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?$"


@dataclass
class LoadResult:
    table: str
    extracted: int = 0  # rows read from the source in this run
    inserted: int = 0  # new keys
    updated: int = 0  # changed versions of mutable rows
    unchanged: int = 0  # re-delivered identical rows
    quarantined: int = 0  # rows newly quarantined by this run

    @property
    def new_or_changed(self) -> int:
        return self.inserted + self.updated + self.quarantined


def q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _typed(col: str, typ: str) -> str:
    """SQL that casts a VARCHAR column strictly; NULL when the text is invalid."""
    c = f"b.{col}"
    if typ == "DATE":
        return f"CASE WHEN regexp_matches(trim({c}), '{DATE_RE}') THEN TRY_CAST(trim({c}) AS DATE) END"
    if typ == "TIMESTAMP":
        return f"CASE WHEN regexp_matches(trim({c}), '{TS_RE}') THEN TRY_CAST(trim({c}) AS TIMESTAMP) END"
    if typ == "VARCHAR":
        return f"NULLIF(trim({c}), '')"
    # Numbers: DuckDB's VARCHAR -> DECIMAL cast rounds half away from zero.
    return f"TRY_CAST(trim({c}) AS {typ})"


def _invalid_reason(col: str, typ: str) -> str:
    if typ == "DATE":
        return "invalid_date"
    if typ == "TIMESTAMP":
        return "invalid_timestamp"
    return "invalid_number"


def _rule_cases(spec: TableSpec, extra_rules: list[tuple[str, str]]) -> str:
    """CASE expression giving the first broken rule of a typed row `t`, or NULL."""
    whens = []
    for k in spec.key:
        whens.append((f"t.{k} IS NULL", "missing_key"))
    for col, typ in spec.columns.items():
        if typ != "VARCHAR":
            whens.append((f"t.__raw_{col} IS NOT NULL AND trim(t.__raw_{col}) <> '' AND t.{col} IS NULL",
                          _invalid_reason(col, typ)))
    for col in spec.required:
        whens.append((f"t.{col} IS NULL", "missing_value"))
    for col, allowed in spec.codes.items():
        whens.append((f"t.{col} IS NOT NULL AND t.{col} NOT IN ({', '.join(q(a) for a in allowed)})", "unknown_code"))
    whens.extend(extra_rules)
    body = " ".join(f"WHEN {cond} THEN '{reason}'" for cond, reason in whens)
    return f"CASE {body} END"


def load_batch(
    con,
    spec: TableSpec,
    batch: str,
    source_label: str,
    business_date: str,
    extra_rules: list[tuple[str, str]] | None = None,
    extra_joins: str = "",
    replace_where: str | None = None,
    loaded_at: datetime | None = None,
) -> LoadResult:
    """Validate `batch` (all-VARCHAR, with `_ord`) and merge it into raw.<spec.name>.

    extra_rules: (condition on typed row `t`, reason) checked after the generic
    rules, in order; they may use columns brought in by `extra_joins`.
    replace_where: for re-delivered files, raw rows matching this predicate are
    replaced by the batch instead of being treated as earlier deliveries.
    loaded_at: the run's load time, stamped on every row it inserts, updates or
    quarantines, so quality checks can find exactly what one run brought.
    """
    stamp = f"TIMESTAMP {q((loaded_at or datetime.now()).isoformat(sep=' '))}"
    cols = list(spec.columns)
    res = LoadResult(spec.name)
    res.extracted = con.execute(f"SELECT count(*) FROM {batch}").fetchone()[0]
    if res.extracted == 0:
        return res

    typed_cols = ", ".join(f"{_typed(c, t)} AS {c}" for c, t in spec.columns.items())
    raw_cols = ", ".join(f"b.{c} AS __raw_{c}" for c in cols)
    raw_json = "to_json(struct_pack(" + ", ".join(f"{c} := b.{c}" for c in cols) + "))"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE __typed AS
        SELECT b._ord, {typed_cols}, {raw_cols}, {raw_json}::VARCHAR AS __raw_json
        FROM {batch} b
    """)
    key = ", ".join(spec.key)
    key_text = " || '|' || ".join(f"coalesce(CAST(t.{k} AS VARCHAR), '')" for k in spec.key)
    reason = _rule_cases(spec, extra_rules or [])
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE __checked AS
        SELECT t.*, {reason} AS __reason, {key_text} AS __key_text, md5(t.__raw_json) AS __row_hash
        FROM __typed t {extra_joins}
    """)
    # Within the batch the first delivery of a key wins; later copies with other
    # content are duplicates, identical copies are the same row delivered twice.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE __ranked AS
        SELECT *,
          row_number() OVER (PARTITION BY {key} ORDER BY _ord) AS __nth,
          first_value(__row_hash) OVER (PARTITION BY {key} ORDER BY _ord) AS __first_hash
        FROM __checked WHERE __reason IS NULL
    """)
    con.execute("""
        UPDATE __checked c SET __reason = 'duplicate_key'
        FROM __ranked r WHERE c._ord = r._ord AND r.__nth > 1 AND r.__row_hash <> r.__first_hash
    """)
    con.execute("DELETE FROM __ranked WHERE __nth > 1")

    target = f"raw.{spec.name}"
    differs = " OR ".join(f"r.{c} IS DISTINCT FROM n.{c}" for c in cols)
    join_key = " AND ".join(f"r.{k} = n.{k}" for k in spec.key)
    if replace_where:
        con.execute(f"DELETE FROM {target} WHERE {replace_where}")
    # The loaded rows under the batch's keys, read once: the raw tables hold the whole history
    # (tens of millions of ledger rows at 1M loans), a daily batch a few thousand keys.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE __loaded AS
        SELECT {', '.join('r.' + c for c in cols)} FROM {target} r SEMI JOIN __ranked n ON {join_key}
    """)
    if spec.mutable:
        res.updated = con.execute(f"""
            SELECT count(*) FROM __ranked n JOIN __loaded r ON {join_key} WHERE {differs}
        """).fetchone()[0]
        if res.updated:
            con.execute(f"""
                DELETE FROM {target} r USING __ranked n WHERE {join_key} AND ({differs})
            """)
    else:
        # An append-only key already loaded keeps its first delivery; a different
        # row under that key is a duplicate.
        con.execute(f"""
            UPDATE __checked c SET __reason = 'duplicate_key'
            FROM __ranked n JOIN __loaded r ON {join_key}
            WHERE c._ord = n._ord AND ({differs})
        """)
    res.unchanged = con.execute(f"""
        SELECT count(*) FROM __ranked n JOIN __loaded r ON {join_key} WHERE NOT ({differs})
    """).fetchone()[0]
    # New keys, and changed versions of mutable rows (deleted above); an unchanged row stays.
    res.inserted = con.execute(f"""
        INSERT INTO {target} ({', '.join(cols)}, _loaded_at)
        SELECT {', '.join('n.' + c for c in cols)}, {stamp} FROM __ranked n
        WHERE n._ord IN (SELECT _ord FROM __checked WHERE __reason IS NULL)
          AND NOT EXISTS (SELECT 1 FROM __loaded r WHERE {join_key} AND NOT ({differs}))
    """).fetchone()[0] - res.updated
    res.quarantined = con.execute(f"""
        INSERT INTO raw.quarantine
        SELECT DISTINCT ON (__row_hash, __reason)
          {q(source_label)}, __key_text, __reason, __raw_json, __row_hash,
          DATE {q(business_date)}, {stamp}
        FROM __checked c
        WHERE __reason IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM raw.quarantine x
                          WHERE x.source = {q(source_label)} AND x.row_hash = c.__row_hash
                            AND x.reason = c.__reason)
        ORDER BY __row_hash, __reason, _ord
    """).fetchone()[0]
    for t in ("__typed", "__checked", "__ranked", "__loaded"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    return res
