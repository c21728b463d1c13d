"""Every GX suite in expectations/ passes good rows and fails bad ones (with the right expectation)."""

from pathlib import Path

import pandas as pd
import pytest

from orchestration.extract.schema import ALL_TABLES
from orchestration.quality.gx_suites import run_suite
from orchestration.settings import EXPECTATIONS_DIR

KEY = "a" * 64


def _raw_good(spec) -> pd.DataFrame:
    values = {
        "DATE": pd.Timestamp("2025-03-01"), "TIMESTAMP": pd.Timestamp("2025-03-01 10:00"), "INTEGER": 1,
        "DECIMAL(18,2)": 10.0, "DECIMAL(9,6)": 0.18, "VARCHAR": "x",
    }
    row = {c: values[t] for c, t in spec.columns.items()}
    for c, allowed in spec.codes.items():
        row[c] = allowed[0]
    if "do_not_contact" in row:
        row["do_not_contact"] = 0
    rows = []
    for i in range(3):
        r = dict(row)
        for k in spec.key:
            r[k] = (f"K{i}" if spec.columns[k] == "VARCHAR" else row[k] + pd.Timedelta(days=i)
                    if spec.columns[k] == "DATE" else i + 1)
        rows.append(r)
    return pd.DataFrame(rows)


def _fct_good(n=3) -> pd.DataFrame:
    return pd.DataFrame({
        "as_of_date": [pd.Timestamp("2025-03-01")] * n, "loan_id": [f"L{i}" for i in range(n)],
        "customer_key": [KEY] * n, "product_id": ["P1"] * n, "product_type": ["cash_loan"] * n,
        "channel": ["app"] * n, "province": ["Beijing"] * n, "disbursed_on": [pd.Timestamp("2025-01-01")] * n,
        "principal": [1000.0] * n, "outstanding_principal": [800.0] * n, "overdue_amount": [0.0] * n,
        "dpd": [0] * n, "missed_installments": [0] * n, "bucket": ["M0"] * n, "severity": ["current"] * n,
        "five_category": ["normal"] * n, "flag_missed_2plus": [False] * n, "flag_large_overdue": [False] * n,
        "flag_failed_debits": [False] * n, "flag_first_payment_default": [False] * n,
    })


def _portfolio_good() -> pd.DataFrame:
    return pd.DataFrame({
        "segment_type": ["all", "channel"], "segment_value": ["all", "app"], "loans_on_book": [3, 3],
        "overdue_rate_count": [0.1, 0.1], "par_0": [0.2, 0.2], "par_30": [0.1, 0.1], "par_60": [0.0, 0.0],
        "par_90": [None, 0.0],
    })


def _case(name):
    """(good frame, bad frame, parameters, expectation types that must fail on the bad frame)."""
    raw = {f"raw_{s.name}": s for s in ALL_TABLES}
    if name in raw:
        spec = raw[name]
        good = _raw_good(spec)
        bad = good.copy()
        for k in spec.key:
            bad.loc[1, k] = good.loc[0, k]  # duplicate key
        bad.loc[2, spec.key[0]] = None  # missing key
        expected = {"expect_column_values_to_not_be_null",
                    "expect_column_values_to_be_unique" if len(spec.key) == 1 else "expect_compound_columns_to_be_unique"}
        if spec.codes:
            col = next(iter(spec.codes))
            bad.loc[0, col] = "not_a_code"
            expected.add("expect_column_values_to_be_in_set")
        return good, bad, {}, expected
    if name == "fct_loan_delinquency_daily":
        good = _fct_good()
        bad = good.copy()
        bad.loc[1, "loan_id"] = "L0"
        bad.loc[0, "customer_key"] = "13800000001"  # a phone number where a hash belongs
        bad.loc[2, "dpd"] = -1
        bad.loc[2, "bucket"] = "M9"
        bad.loc[1, "outstanding_principal"] = 2000.0
        return good, bad, {"min_rows": 2, "max_rows": 10}, {
            "expect_column_values_to_be_unique", "expect_column_values_to_match_regex",
            "expect_column_values_to_be_between", "expect_column_values_to_be_in_set",
            "expect_column_pair_values_a_to_be_greater_than_b"}
    if name == "mart_portfolio_daily":
        good = _portfolio_good()
        bad = good.copy()
        bad.loc[1, "par_30"] = 1.5
        bad.loc[1, "segment_type"] = "all"
        bad.loc[1, "segment_value"] = "all"
        return good, bad, {}, {"expect_column_values_to_be_between", "expect_compound_columns_to_be_unique"}
    if name == "recon_bucket_balances":
        good = pd.DataFrame({"difference": [0.0], "loan_count_difference": [0]})
        bad = pd.DataFrame({"difference": [0.01], "loan_count_difference": [1]})
        return good, bad, {}, {"expect_column_values_to_be_between"}
    if name == "recon_gateway_posting":
        good = pd.DataFrame({"payment_id": ["P1"], "posted": [True]})
        bad = pd.DataFrame({"payment_id": ["P1", "P2"], "posted": [True, False]})
        return good, bad, {}, {"expect_column_values_to_be_in_set"}
    if name == "quarantine_share":
        good = pd.DataFrame({"quarantined_share": [0.01]})
        bad = pd.DataFrame({"quarantined_share": [0.0101]})
        return good, bad, {"max_share": 0.01}, {"expect_column_values_to_be_between"}
    raise AssertionError(f"suite {name} has no test case: add one")


SUITES = sorted(p.stem for p in Path(EXPECTATIONS_DIR).glob("*.json"))


def test_every_suite_file_is_covered():
    assert len(SUITES) >= 12
    for name in SUITES:
        _case(name)


@pytest.mark.parametrize("name", SUITES)
def test_suite_passes_good_rows_and_fails_bad_ones(name):
    good, bad, params, expected_failures = _case(name)
    ok = run_suite(good, name, params)
    assert ok.passed, ok.describe()
    assert ok.evaluated >= 1
    failed = run_suite(bad, name, params)
    assert not failed.passed
    got = {f["expectation"] for f in failed.critical_failures + failed.warnings}
    assert expected_failures <= got, failed.describe()


def test_warning_failures_do_not_block_but_critical_ones_do():
    warn = run_suite(pd.DataFrame({"payment_id": ["P2"], "posted": [False]}), "recon_gateway_posting")
    assert (warn.passed, warn.blocking, len(warn.warnings)) == (False, False, 1)
    assert warn.warnings[0]["unexpected"] == 1
    crit = run_suite(pd.DataFrame({"quarantined_share": [0.5]}), "quarantine_share", {"max_share": 0.01})
    assert crit.blocking


def test_volume_band_is_a_warning(tmp_path):
    out = run_suite(_fct_good(3), "fct_loan_delinquency_daily", {"min_rows": 10, "max_rows": 20}, gx_root=tmp_path)
    assert [w["expectation"] for w in out.warnings] == ["expect_table_row_count_to_be_between"]
    assert not out.blocking
    assert out.docs_path and Path(out.docs_path).exists()  # GX Data Docs were built
    assert "/validations/fct_loan_delinquency_daily/" in out.docs_path  # the check links to its own page


def test_stored_results_carry_no_fingerprint_of_the_batch(tmp_path):
    """GX would hash every batch under 1 GB (1.5 s of a 1M-loan day's fct suite); it is switched off."""
    import json

    out = run_suite(_fct_good(3), "fct_loan_delinquency_daily", {"min_rows": 0, "max_rows": 10}, gx_root=tmp_path)
    assert out.passed
    stored = list((tmp_path / "gx" / "uncommitted" / "validations").rglob("*.json"))
    assert len(stored) == 1
    markers = json.loads(stored[0].read_text())["meta"]["batch_markers"]
    assert "ge_load_time" in markers and "pandas_data_fingerprint" not in markers


def test_data_docs_are_rendered_once_per_run_and_the_index_lists_only_the_latest(tmp_path, monkeypatch):
    """Passing suites only store their results; one render makes every missing page and an index that
    does not grow with every result ever stored. A failing suite renders at once."""
    from orchestration.quality import gx_suites

    monkeypatch.setattr(gx_suites, "DOCS_INDEX_VALIDATIONS", 3)
    def run(n):
        return [run_suite(_fct_good(3), "fct_loan_delinquency_daily", {"min_rows": 1, "max_rows": 9},
                          gx_root=tmp_path).docs_path for _ in range(n)]

    pages = run(2)
    assert not any(Path(p).exists() for p in pages)
    assert gx_suites.render_data_docs(tmp_path) == 2
    pages += run(3)
    assert len(set(pages)) == 5 and not any(Path(p).exists() for p in pages[2:])
    assert gx_suites.render_data_docs(tmp_path) == 3
    assert all(Path(p).exists() for p in pages)  # every validation keeps its page
    assert gx_suites.render_data_docs(tmp_path) == 0
    site = tmp_path / "gx" / "uncommitted" / "data_docs" / "local_site"
    index = gx_suites.docs_index(tmp_path).read_text()
    linked = [p for p in pages if Path(p).relative_to(site).as_posix() in index]
    assert linked == pages[-3:]
    failed = run_suite(_fct_good(3), "fct_loan_delinquency_daily", {"min_rows": 10, "max_rows": 20}, gx_root=tmp_path)
    assert Path(failed.docs_path).exists() and Path(failed.docs_path).relative_to(site).as_posix() in \
        gx_suites.docs_index(tmp_path).read_text()


def test_large_batches_are_validated_in_slices_with_the_same_findings():
    """A first load is validated in hash slices of its key: uniqueness stays exact across slices and the
    unexpected counts add up to those of one pass."""
    import duckdb

    from orchestration.extract.schema import LOAN_TRANSACTIONS
    from orchestration.quality.gx_suites import run_suite_on_query

    base = _raw_good(LOAN_TRANSACTIONS).iloc[0]
    rows = pd.DataFrame([base] * 40).reset_index(drop=True)
    rows["txn_id"] = [f"T{i}" for i in range(40)]
    rows.loc[[3, 17], "txn_id"] = "T0"  # the key three times
    rows.loc[[5, 25, 35], "loan_id"] = None
    con = duckdb.connect()
    con.register("batch", rows)
    sql, name = "SELECT * FROM batch WHERE txn_id <> ?", "raw_loan_transactions"
    whole = run_suite_on_query(con, sql, ["none"], name)
    sliced = run_suite_on_query(con, sql, ["none"], name, slice_rows=7)
    assert whole.blocking and sliced.rows == whole.rows == 40

    def found(o):
        return sorted((f["expectation"], f["column"], f["unexpected"]) for f in o.critical_failures + o.warnings)

    assert found(sliced) == found(whole)
    assert ("expect_column_values_to_be_unique", "txn_id", 3) in found(sliced)
    assert ("expect_column_values_to_not_be_null", "loan_id", 3) in found(sliced)


def test_an_edited_suite_file_is_used_by_the_next_batch_of_the_same_process(tmp_path, monkeypatch):
    """Suites are kept in the GX context between batches of a process; the file stays the truth."""
    import json

    from orchestration.quality import gx_suites

    monkeypatch.setattr(gx_suites, "EXPECTATIONS_DIR", tmp_path)
    suite = json.loads((Path(EXPECTATIONS_DIR) / "recon_gateway_posting.json").read_text())
    (tmp_path / "recon_gateway_posting.json").write_text(json.dumps(suite))
    rows = pd.DataFrame({"payment_id": ["P1", "P2"], "posted": [True, False]})
    assert [w["expectation"] for w in run_suite(rows, "recon_gateway_posting").warnings] == [
        "expect_column_values_to_be_in_set"]
    suite["expectations"][0]["kwargs"]["value_set"] = [True, False]  # an unposted payment now allowed
    (tmp_path / "recon_gateway_posting.json").write_text(json.dumps(suite))
    assert run_suite(rows, "recon_gateway_posting").passed
    suite["expectations"][0]["kwargs"]["value_set"] = [True]  # and back
    (tmp_path / "recon_gateway_posting.json").write_text(json.dumps(suite))
    assert not run_suite(rows, "recon_gateway_posting").passed
