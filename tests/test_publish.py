"""BI publishing: atomic, day by day, and never in a reader's way."""

import multiprocessing as mp
import time
from decimal import Decimal

import duckdb

from orchestration.publish.bi import PublishedMart, publish

MARTS = [PublishedMart("fct_daily", "as_of_date"), PublishedMart("mart_monthly", None)]
LOANS_PER_DAY = 500


def _warehouse(path):
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA marts")
    con.execute("CREATE TABLE marts.fct_daily (as_of_date DATE, loan_id VARCHAR, overdue_amount DECIMAL(18,2))")
    con.execute("CREATE TABLE marts.mart_monthly (month DATE, loans INTEGER)")
    return con


def _build_day(con, day: str, amount: str = "1.10"):
    con.execute("DELETE FROM marts.fct_daily WHERE as_of_date = ?", [day])
    con.execute(f"""INSERT INTO marts.fct_daily
                    SELECT DATE '{day}', 'L' || lpad(i::VARCHAR, 5, '0'), {amount} FROM range({LOANS_PER_DAY}) t(i)""")
    con.execute("DELETE FROM marts.mart_monthly")
    con.execute(f"INSERT INTO marts.mart_monthly VALUES (date_trunc('month', DATE '{day}'), {LOANS_PER_DAY})")


def test_publish_replaces_a_day_and_keeps_types(tmp_path):
    wh = _warehouse(tmp_path / "wh.duckdb")
    bi = tmp_path / "bi" / "arrears.duckdb"
    bi.parent.mkdir()
    for day in ("2025-03-01", "2025-03-02"):
        _build_day(wh, day)
        publish(wh, bi, day, MARTS)
    _build_day(wh, "2025-03-01", amount="2.25")  # a re-run of a day replaces only that day
    publish(wh, bi, "2025-03-01", MARTS)
    with duckdb.connect(str(bi), read_only=True) as r:
        assert r.execute("""SELECT as_of_date::VARCHAR, count(*), sum(overdue_amount) FROM marts.fct_daily
                            GROUP BY 1 ORDER BY 1""").fetchall() == [
            ("2025-03-01", LOANS_PER_DAY, Decimal("1125.00")), ("2025-03-02", LOANS_PER_DAY, Decimal("550.00"))]
        types = dict(r.execute("SELECT column_name, column_type FROM (DESCRIBE marts.fct_daily)").fetchall())
        assert types == {"as_of_date": "DATE", "loan_id": "VARCHAR", "overdue_amount": "DECIMAL(18,2)"}
        assert r.execute("SELECT count(*) FROM marts.mart_monthly").fetchone()[0] == 1


def test_a_moved_home_keeps_publishing_every_day(tmp_path):
    wh = _warehouse(tmp_path / "wh.duckdb")
    old = tmp_path / "old" / "bi" / "arrears.duckdb"
    old.parent.mkdir(parents=True)
    _build_day(wh, "2025-03-01")
    publish(wh, old, "2025-03-01", MARTS)
    (tmp_path / "old").rename(tmp_path / "new")  # ARREARS_HOME moved (or copied and the old one removed)
    bi = tmp_path / "new" / "bi" / "arrears.duckdb"
    _build_day(wh, "2025-03-02")
    publish(wh, bi, "2025-03-02", MARTS)
    with duckdb.connect(str(bi), read_only=True) as r:
        assert r.execute("SELECT as_of_date::VARCHAR, count(*) FROM marts.fct_daily GROUP BY 1 ORDER BY 1").fetchall() == [
            ("2025-03-01", LOANS_PER_DAY), ("2025-03-02", LOANS_PER_DAY)]
        assert all(p.startswith(str(tmp_path / "new")) for p, in r.execute("SELECT path FROM _publish.files").fetchall())


def _reader(bi_path: str, ready: mp.Queue, stop, out: mp.Queue):
    errors, reads, partial, messages = 0, 0, 0, []
    ready.put(True)  # started (a spawned reader takes a while to import on a busy machine)
    while not stop.is_set():
        try:
            with duckdb.connect(bi_path, read_only=True) as r:
                for n, in r.execute("SELECT count(*) FROM marts.fct_daily GROUP BY as_of_date").fetchall():
                    partial += n != LOANS_PER_DAY
            reads += 1
        except Exception as e:
            errors += 1
            messages.append(f"{type(e).__name__}: {e}"[:300])
    out.put((reads, errors, partial, messages[:3]))


def test_twenty_readers_never_fail_nor_see_half_a_day(tmp_path):
    wh = _warehouse(tmp_path / "wh.duckdb")
    bi = tmp_path / "bi" / "arrears.duckdb"
    bi.parent.mkdir()
    _build_day(wh, "2025-03-01")
    publish(wh, bi, "2025-03-01", MARTS)
    ctx = mp.get_context("spawn")
    ready, stop, out = ctx.Queue(), ctx.Event(), ctx.Queue()
    readers = [ctx.Process(target=_reader, args=(str(bi), ready, stop, out)) for _ in range(20)]
    for p in readers:
        p.start()
    for _ in readers:  # publish only once every reader is reading
        ready.get(timeout=120)
    day, publish_until = 2, time.time() + 5
    while time.time() < publish_until:
        d = f"2025-03-{day:02d}"
        _build_day(wh, d)
        publish(wh, bi, d, MARTS)
        day += 1
    stop.set()
    results = [out.get(timeout=60) for _ in readers]
    for p in readers:
        p.join()
    assert day > 4, "publishing made no progress"
    assert sum(r[0] for r in results) > 100
    assert [r[1] for r in results] == [0] * 20, [r[3] for r in results if r[3]]  # no reader error
    assert [r[2] for r in results] == [0] * 20  # never a partial day
