#!/usr/bin/env bash
# Run the dbt unit tests (unit_tests: in the model YAMLs) against a warehouse.
# dbt reads the column types of each unit test's parents from the warehouse, so the parents
# must exist: seed, then build every model empty (no data scanned), then run the unit tests.
# Usage: ARREARS_WAREHOUSE=/abs/path/warehouse.duckdb dbt_project/run_unit_tests.sh
# (the raw tables must exist: orchestration.extract.schema.create_raw_schema creates them empty)
set -euo pipefail
cd "$(dirname "$0")"
DBT="${DBT:-../.venv/bin/dbt}"
: "${ARREARS_WAREHOUSE:?set ARREARS_WAREHOUSE to the warehouse path}"
"$DBT" seed --profiles-dir .
"$DBT" run --empty --profiles-dir . --vars '{business_date: "2025-03-10"}'
"$DBT" test --profiles-dir . --select test_type:unit
