"""The dbt project on a small hand-made book: exact rows of both daily marts, computed by hand.

Book (every loan but L and N: principal 270.00, disbursed 2025-01-10, three installments of
100.00 = 90 principal + 10 interest, due 2025-02-10, 2025-03-10, 2025-04-10):

  A  pays installment 1 on 02-10 and installment 2 on its due date 03-10 (on time).
  B  pays nothing.
  C  pays installment 1 with value date 02-10 but it is booked only on 03-11 (back-dated).
  W  pays nothing; written off with value date 03-11 (status written_off from 03-11).
  F  pays installment 1; three failed debits initiated 03-08, 03-09, 03-10; the 03-10 one
     succeeds in the 03-11 settlement file.
  S  prepays everything on 03-05 and is settled on 03-05.
  L  principal 30000.00, three installments of 10500.00 (10000 + 500), nothing paid.
  N  disbursed 2025-03-11 (does not exist on 03-10), principal 500.00, one installment 510.00
     due 2025-04-11.

D1 = 2025-03-10 is built before the rows booked on 03-11 reach the raw layer, D2 = 2025-03-11
after; then D1 is built again with those later rows present and must give the same rows.
"""

import hashlib
import hmac
import os
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from orchestration.extract.schema import create_raw_schema

REPO = Path(__file__).resolve().parent.parent
DBT_PROJECT = REPO / "dbt_project"
DBT = Path(sys.executable).parent / "dbt"
PII_KEY = "test-pii-key"
D1, D2 = "2025-03-10", "2025-03-11"

CUSTOMERS = [
    # customer_id, full_name, national_id, phone, email, birth_date, province, income, employment, dnc
    ("C1", "Li Lei", "110101199001011234", "13800000001", "li@example.com", "1990-01-01", "Zhejiang", 8000, "salaried", 0),
    ("C2", "Han Meimei", "110101199202021234", "13800000002", "han@example.com", "1992-02-02", None, 6000, "self_employed", 0),
]
PRODUCTS = [("P1", "Cash", "cash_loan", 3, 0.18), ("P2", "Installment", "consumer_installment", 3, 0.12)]
LOANS = [
    # loan_id, customer, product, principal, disbursed_on, channel, status, status_changed_on
    ("A", "C1", "P1", 270, "2025-01-10", "app", "active", None),
    ("B", "C2", "P2", 270, "2025-01-10", "partner", "active", None),
    ("C", "C1", "P1", 270, "2025-01-10", "branch", "active", None),
    ("W", "C2", "P1", 270, "2025-01-10", "app", "written_off", "2025-03-11"),
    ("F", "C1", "P2", 270, "2025-01-10", "app", "active", None),
    ("S", "C2", "P2", 270, "2025-01-10", "branch", "settled", "2025-03-05"),
    ("L", "C1", "P1", 30000, "2025-01-10", "partner", "active", None),
    ("N", "C1", "P1", 500, "2025-03-11", "app", "active", None),
]
DUES = ["2025-02-10", "2025-03-10", "2025-04-10"]
SCHEDULE = [(lid, k + 1, due, 90, 10, 0) for lid in "ABCWFS" for k, due in enumerate(DUES)]
SCHEDULE += [("L", k + 1, due, 10000, 500, 0) for k, due in enumerate(DUES)]
SCHEDULE += [("N", 1, "2025-04-11", 500, 10, 0)]
TXNS_KNOWN_BY_D1 = [
    # txn_id, loan_id, type, amount, principal_portion, value_date, booked_at
    ("tA1", "A", "repayment", 100, 90, "2025-02-10", "2025-02-10 10:00:00"),
    ("tA2", "A", "repayment", 100, 90, "2025-03-10", "2025-03-10 23:59:59"),
    ("tF1", "F", "repayment", 100, 90, "2025-02-10", "2025-02-10 08:00:00"),
    ("tS1", "S", "repayment", 300, 270, "2025-03-05", "2025-03-05 09:00:00"),
]
TXNS_BOOKED_D2 = [
    ("tC1", "C", "repayment", 100, 90, "2025-02-10", "2025-03-11 09:00:00"),  # back-dated
    ("tW1", "W", "write_off", 270, 270, "2025-03-11", "2025-03-11 18:00:00"),
]
SETTLEMENTS_BY_D1 = [
    # settlement_date, payment_id, loan_id, status, initiated_at
    ("2025-03-08", "pF1", "F", "failed", "2025-03-08 07:00:00"),
    ("2025-03-09", "pF2", "F", "failed", "2025-03-09 07:00:00"),
    ("2025-03-10", "pF3", "F", "failed", "2025-03-10 07:00:00"),
    ("2025-03-10", "pA2", "A", "succeeded", "2025-03-10 07:00:00"),
]
SETTLEMENTS_D2 = [("2025-03-11", "pF3", "F", "succeeded", "2025-03-10 07:00:00")]


def key(customer_id: str) -> str:
    return hmac.new(PII_KEY.encode(), customer_id.encode(), hashlib.sha256).hexdigest()


PROVINCE = {"C1": "Zhejiang", "C2": "unknown"}
PTYPE = {"P1": "cash_loan", "P2": "consumer_installment"}
LOAN = {r[0]: r for r in LOANS}
BUCKET = {0: ("M0", "current", "normal"), 1: ("M1", "mild", "special_mention")}


def fct_row(day, loan_id, outstanding, overdue, dpd, missed, missed2, large, failed, fpd):
    _, cust, prod, principal, disbursed, channel, _, _ = LOAN[loan_id]
    bucket = BUCKET[0] if dpd == 0 else BUCKET[1]
    return (date.fromisoformat(day), loan_id, key(cust), prod, PTYPE[prod], channel, PROVINCE[cust],
            date.fromisoformat(disbursed), Decimal(principal).quantize(Decimal("0.01")),
            Decimal(outstanding).quantize(Decimal("0.01")), Decimal(overdue).quantize(Decimal("0.01")),
            dpd, missed, *bucket, missed2, large, failed, fpd)


# Hand-computed (business_rules.md section 2, tolerance 1.00):
EXPECTED_FCT = {
    D1: [
        fct_row(D1, "A", 90, 0, 0, 0, False, False, False, False),      # 03-10 payment on due date: on time
        fct_row(D1, "B", 270, 100, 28, 1, False, False, False, True),   # inst 1 due 02-10 unpaid
        fct_row(D1, "C", 270, 100, 28, 1, False, False, False, True),   # repayment booked 03-11 unknown on D1
        fct_row(D1, "F", 180, 0, 0, 0, False, False, True, False),      # 3 failed debits in [03-04, 03-10]
        fct_row(D1, "L", 30000, 10500, 28, 1, False, True, False, True),
        fct_row(D1, "W", 270, 100, 28, 1, False, False, False, True),   # written off only on 03-11
        # S settled 03-05: off book; N not disbursed yet
    ],
    D2: [
        fct_row(D2, "A", 90, 0, 0, 0, False, False, False, False),
        fct_row(D2, "B", 270, 200, 29, 2, True, False, False, True),
        fct_row(D2, "C", 180, 100, 1, 1, False, False, False, False),   # inst 1 now paid, inst 2 due 03-10
        fct_row(D2, "F", 180, 100, 1, 1, False, False, False, False),   # pF3 succeeded in the 03-11 file
        fct_row(D2, "L", 30000, 21000, 29, 2, True, True, False, True),
        fct_row(D2, "N", 500, 0, 0, 0, False, False, False, False),
        # W written off on 03-11: off book
    ],
}


def expected_portfolio(day):
    rows = EXPECTED_FCT[day]
    segments = {("all", "all"): rows}
    for col, name in ((4, "product_type"), (5, "channel"), (6, "province")):
        for r in rows:
            segments.setdefault((name, r[col]), []).append(r)
    out = []
    for (stype, svalue), rs in segments.items():
        op = sum(r[9] for r in rs)
        overdue = [r for r in rs if r[11] > 0]

        def par(x):
            return float(sum((r[9] for r in rs if r[11] > x), Decimal(0))) / float(op) if op else None

        out.append((date.fromisoformat(day), stype, svalue, len(rs), op, len(overdue),
                    sum((r[10] for r in rs), Decimal(0)).quantize(Decimal("0.01")), len(overdue) / len(rs),
                    par(0), par(30), par(60), par(90)))
    return sorted(out, key=lambda r: (r[1], r[2]))


def test_expected_portfolio_by_hand():
    """Spot-check the helper against numbers worked out by hand for D1's overall row."""
    overall = [r for r in expected_portfolio(D1) if r[1] == "all"][0]
    assert overall[3:8] == (6, Decimal("31080.00"), 4, Decimal("10800.00"), 4 / 6)
    assert overall[8:] == (30810 / 31080, 0.0, 0.0, 0.0)


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    create_raw_schema(con)
    loaded = "2025-03-10 23:00:00"
    con.executemany("INSERT INTO raw.customers VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [(*c, "2024-01-01", "2024-01-01", loaded) for c in CUSTOMERS])
    con.executemany("INSERT INTO raw.loan_products VALUES (?,?,?,?,?,?)", [(*p, loaded) for p in PRODUCTS])
    con.executemany("INSERT INTO raw.loans VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    [(l, c, p, pr, 0.18, 3, d, ch, st, sc, "2025-03-11", loaded)
                     for l, c, p, pr, d, ch, st, sc in LOANS])
    con.executemany("INSERT INTO raw.repayment_schedule VALUES (?,?,?,?,?,?,?)", [(*s, loaded) for s in SCHEDULE])
    _insert_txns(con, TXNS_KNOWN_BY_D1, loaded)
    _insert_settlements(con, SETTLEMENTS_BY_D1, loaded)
    con.close()
    return path


def _insert_txns(con, rows, loaded):
    con.executemany("INSERT INTO raw.loan_transactions VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    [(t, l, ty, a, pp, a - pp, 0, vd, ba, None, None, loaded) for t, l, ty, a, pp, vd, ba in rows])


def _insert_settlements(con, rows, loaded):
    con.executemany("INSERT INTO raw.gateway_settlements VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [(sd, f"settlement_{sd}.csv", i + 1, pid, lid, 100, "CNY", st, "bank_card_debit", ia, None,
                      "insufficient_funds" if st == "failed" else None, loaded)
                     for i, (sd, pid, lid, st, ia) in enumerate(rows)])


def dbt(tmp_path, *args):
    env = {**os.environ, "ARREARS_WAREHOUSE": str(tmp_path / "warehouse.duckdb"), "ARREARS_PII_KEY": PII_KEY,
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    env.pop("DBT_PROJECT_DIR", None)
    cmd = [str(DBT), *args, "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT),
           "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")]
    result = subprocess.run(cmd, cwd=DBT_PROJECT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def build(tmp_path, day):
    return dbt(tmp_path, "build", "--vars", f"{{business_date: '{day}'}}", "--exclude", "test_type:unit")


def rows(path, sql, params=()):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


FCT = "SELECT * FROM marts.fct_loan_delinquency_daily WHERE as_of_date = ? ORDER BY loan_id"
PORTFOLIO = "SELECT * FROM marts.mart_portfolio_daily WHERE as_of_date = ? ORDER BY segment_type, segment_value"


def test_daily_marts_exact_rows_and_reruns(tmp_path, warehouse):
    dbt(tmp_path, "seed")
    build(tmp_path, D1)
    assert rows(warehouse, FCT, [D1]) == EXPECTED_FCT[D1]
    assert rows(warehouse, PORTFOLIO, [D1]) == expected_portfolio(D1)

    # Rows booked on 03-11 arrive (a back-dated repayment, a write-off, a later settlement file).
    with duckdb.connect(str(warehouse)) as con:
        _insert_txns(con, TXNS_BOOKED_D2, "2025-03-11 23:00:00")
        _insert_settlements(con, SETTLEMENTS_D2, "2025-03-11 23:00:00")
    build(tmp_path, D2)
    assert rows(warehouse, FCT, [D2]) == EXPECTED_FCT[D2]
    assert rows(warehouse, PORTFOLIO, [D2]) == expected_portfolio(D2)

    # Re-running D1 with the later rows in raw replaces D1 by the same rows and leaves D2 alone.
    with duckdb.connect(str(warehouse)) as con:  # a stale extra row for D1 must disappear
        con.execute("INSERT INTO marts.fct_loan_delinquency_daily SELECT * REPLACE ('ZZ' AS loan_id) "
                    "FROM marts.fct_loan_delinquency_daily WHERE as_of_date = ? AND loan_id = 'A'", [D1])
    build(tmp_path, D1)
    assert rows(warehouse, FCT, [D1]) == EXPECTED_FCT[D1]
    assert rows(warehouse, PORTFOLIO, [D1]) == expected_portfolio(D1)
    assert rows(warehouse, FCT, [D2]) == EXPECTED_FCT[D2]
    assert rows(warehouse, PORTFOLIO, [D2]) == expected_portfolio(D2)
    assert rows(warehouse, "SELECT as_of_date, count(*) FROM marts.fct_loan_delinquency_daily "
                           "GROUP BY 1 ORDER BY 1") == [(date(2025, 3, 10), 6), (date(2025, 3, 11), 6)]

    # Contract: the marts' not_null constraints are enforced by the warehouse on every write.
    with duckdb.connect(str(warehouse)) as con, pytest.raises(duckdb.ConstraintException, match="NOT NULL"):
        con.execute("INSERT INTO marts.fct_loan_delinquency_daily SELECT * REPLACE (NULL AS dpd) "
                    "FROM marts.fct_loan_delinquency_daily WHERE as_of_date = ? AND loan_id = 'A'", [D2])
    # Contract: exact types.
    types = dict(rows(warehouse, "SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_schema = 'marts' AND table_name = 'fct_loan_delinquency_daily'"))
    assert types["outstanding_principal"] == "DECIMAL(18,2)" and types["dpd"] == "INTEGER"
    assert types["flag_failed_debits"] == "BOOLEAN" and types["as_of_date"] == "DATE"
    # No PII in the marts.
    names = {r[0] for r in rows(warehouse, "SELECT column_name FROM information_schema.columns "
                                           "WHERE table_schema = 'marts'")}
    assert not names & {"customer_id", "full_name", "national_id", "phone", "email"}
    assert {r[0] for r in rows(warehouse, "SELECT schema_name FROM information_schema.schemata")} >= {
        "raw", "staging", "intermediate", "marts"}

    # dbt unit tests (their parents exist now).
    # (the reporting marts' unit tests run in tests/test_reporting.py)
    out = dbt(tmp_path, "test", "--select", "test_type:unit", "--exclude", "path:models/marts/reporting",
              "path:models/intermediate/reporting")
    assert "PASS=7" in out and "ERROR=0" in out


def test_missing_business_date_fails_clearly(tmp_path, warehouse):
    env = {**os.environ, "ARREARS_WAREHOUSE": str(warehouse)}
    result = subprocess.run([str(DBT), "run", "--select", "int_loan_state_on_date", "--project-dir", str(DBT_PROJECT),
                             "--profiles-dir", str(DBT_PROJECT), "--target-path", str(tmp_path / "target"),
                             "--log-path", str(tmp_path / "logs")], cwd=DBT_PROJECT, env=env,
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "business_date" in result.stdout


def test_only_the_newest_dbt_invocation_folders_are_kept(tmp_path, arrears_home):
    """Each dbt invocation leaves a ~9 MB folder under dbt's target: the run keeps the newest only."""
    import orchestration.definitions  # noqa: F401  (settings first, as the code location loads)
    from orchestration.dbt import prune_invocation_targets

    target = tmp_path / "target"
    for i in range(5):
        folder = target / f"arrears_dbt_models-run{i}"
        folder.mkdir(parents=True)
        (folder / "dbt.log").write_text("{}")
        os.utime(folder, (1_000_000 + i, 1_000_000 + i))
    (target / "compiled").mkdir()  # not an invocation folder (no dbt.log): left alone
    removed = prune_invocation_targets(target, keep=2)
    assert sorted(p.name for p in removed) == ["arrears_dbt_models-run0", "arrears_dbt_models-run1",
                                               "arrears_dbt_models-run2"]
    assert sorted(p.name for p in target.iterdir()) == ["arrears_dbt_models-run3", "arrears_dbt_models-run4",
                                                          "compiled"]


GX_TEST_TYPES = {"not_null": "expect_column_values_to_not_be_null", "unique": "expect_column_values_to_be_unique",
                 "accepted_values": "expect_column_values_to_be_in_set",
                 "unique_combination_of_columns": "expect_compound_columns_to_be_unique"}


def test_staging_tests_left_out_of_the_daily_build_repeat_a_raw_suite():
    """Staging tests over the raw tables are tagged full_history (not run daily) only because the
    raw GX suite of the same table checks the same column every day: a new staging test with no
    such expectation must not be left out silently."""
    import json

    manifest = json.loads((DBT_PROJECT / "target" / "manifest.json").read_text())
    suites = {}
    for f in (REPO / "expectations").glob("raw_*.json"):
        suites[f.stem.removeprefix("raw_")] = {(e["type"], e["kwargs"].get("column"))
                                              for e in json.loads(f.read_text())["expectations"]}
    left_out = []
    for node in manifest["nodes"].values():
        model = (node.get("attached_node") or "").split(".")[-1]
        if node["resource_type"] != "test" or not model.startswith("stg_") or "full_history" not in node["tags"]:
            continue
        table = {"settlements": "gateway_settlements"}.get(model.split("__")[1], model.split("__")[1])
        kind = GX_TEST_TYPES.get(node["test_metadata"]["name"])
        left_out.append(node["name"])
        assert (kind, node["column_name"]) in suites[table], f"{node['name']}: no raw_{table} expectation"
    assert len(left_out) >= 40
