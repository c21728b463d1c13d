"""The raw layer's tables: one spec per source table (see docs/warehouse.md).

The extractor reads every source column as text, checks it against these
types and the row rules, and only then casts it; dbt reads the typed tables.
"""

from dataclasses import dataclass, field

from ..resources import table_exists

MONEY = "DECIMAL(18,2)"
RATE = "DECIMAL(9,6)"


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: dict[str, str]  # column -> DuckDB type, in source order
    key: tuple[str, ...]
    mutable: bool = False  # latest version wins (else first delivery wins)
    codes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    required: tuple[str, ...] = ()  # non-key columns that may not be NULL

    @property
    def ddl(self) -> str:
        cols = ",\n  ".join(f"{c} {t}" for c, t in self.columns.items())
        return f"CREATE TABLE IF NOT EXISTS raw.{self.name} (\n  {cols},\n  _loaded_at TIMESTAMP\n)"


CUSTOMERS = TableSpec(
    "customers",
    {
        "customer_id": "VARCHAR",
        "full_name": "VARCHAR",
        "national_id": "VARCHAR",
        "phone": "VARCHAR",
        "email": "VARCHAR",
        "birth_date": "DATE",
        "province": "VARCHAR",
        "monthly_income": MONEY,
        "employment_type": "VARCHAR",
        "do_not_contact": "INTEGER",
        "created_at": "TIMESTAMP",
        "updated_at": "TIMESTAMP",
    },
    key=("customer_id",),
    mutable=True,
    codes={
        "employment_type": ("salaried", "self_employed", "student", "retired", "unemployed", "other"),
    },
    required=("updated_at",),
)

LOAN_PRODUCTS = TableSpec(
    "loan_products",
    {
        "product_id": "VARCHAR",
        "product_name": "VARCHAR",
        "product_type": "VARCHAR",
        "term_months": "INTEGER",
        "annual_rate": RATE,
    },
    key=("product_id",),
    mutable=True,
    codes={"product_type": ("cash_loan", "consumer_installment")},
    required=("product_type",),
)

LOANS = TableSpec(
    "loans",
    {
        "loan_id": "VARCHAR",
        "customer_id": "VARCHAR",
        "product_id": "VARCHAR",
        "principal": MONEY,
        "annual_rate": RATE,
        "term_months": "INTEGER",
        "disbursed_on": "DATE",
        "channel": "VARCHAR",
        "status": "VARCHAR",
        "status_changed_on": "DATE",
        "updated_at": "TIMESTAMP",
    },
    key=("loan_id",),
    mutable=True,
    codes={
        "channel": ("app", "partner", "branch"),
        "status": ("active", "settled", "written_off"),
    },
    required=("customer_id", "product_id", "principal", "disbursed_on", "status", "updated_at"),
)

REPAYMENT_SCHEDULE = TableSpec(
    "repayment_schedule",
    {
        "loan_id": "VARCHAR",
        "installment_no": "INTEGER",
        "due_date": "DATE",
        "principal_due": MONEY,
        "interest_due": MONEY,
        "fee_due": MONEY,
    },
    key=("loan_id", "installment_no"),
    required=("due_date", "principal_due", "interest_due", "fee_due"),
)

LOAN_TRANSACTIONS = TableSpec(
    "loan_transactions",
    {
        "txn_id": "VARCHAR",
        "loan_id": "VARCHAR",
        "txn_type": "VARCHAR",
        "amount": MONEY,
        "principal_portion": MONEY,
        "interest_portion": MONEY,
        "fee_portion": MONEY,
        "value_date": "DATE",
        "booked_at": "TIMESTAMP",
        "reverses_txn_id": "VARCHAR",
        "payment_id": "VARCHAR",
    },
    key=("txn_id",),
    codes={
        "txn_type": ("disbursement", "repayment", "reversal", "waiver", "write_off", "recovery"),
    },
    required=("loan_id", "txn_type", "amount", "value_date", "booked_at"),
)

COLLECTION_ACTIONS = TableSpec(
    "collection_actions",
    {
        "action_id": "VARCHAR",
        "loan_id": "VARCHAR",
        "action_at": "TIMESTAMP",
        "channel": "VARCHAR",
        "agent_id": "VARCHAR",
        "outcome": "VARCHAR",
        "promised_amount": MONEY,
        "promised_date": "DATE",
    },
    key=("action_id",),
    codes={
        "channel": ("sms", "app_push", "email", "call", "field_visit", "legal_letter", "agency"),
        "outcome": ("delivered", "no_answer", "contacted", "promise_to_pay", "refused", "wrong_number", "dispute"),
    },
    required=("loan_id", "action_at", "channel"),
)

GATEWAY_SETTLEMENTS = TableSpec(
    "gateway_settlements",
    {
        "settlement_date": "DATE",
        "file_name": "VARCHAR",
        "line_no": "INTEGER",
        "payment_id": "VARCHAR",
        "loan_id": "VARCHAR",
        "amount": MONEY,
        "currency": "VARCHAR",
        "status": "VARCHAR",
        "channel": "VARCHAR",
        "initiated_at": "TIMESTAMP",
        "settled_at": "TIMESTAMP",
        "failure_reason": "VARCHAR",
    },
    key=("settlement_date", "payment_id"),
    codes={
        "currency": ("CNY",),
        "status": ("succeeded", "failed", "refunded"),
        "channel": ("bank_card_debit", "alipay", "wechat_pay", "bank_transfer", "counter"),
        "failure_reason": ("insufficient_funds", "card_expired", "account_frozen", "limit_exceeded", "other"),
    },
    required=("loan_id", "amount", "status", "initiated_at"),
)

# Columns of a settlement file, in order (the file has no settlement_date etc.).
SETTLEMENT_FILE_COLUMNS = tuple(
    c for c in GATEWAY_SETTLEMENTS.columns if c not in ("settlement_date", "file_name", "line_no")
)

CORE_BANKING_TABLES = (
    LOAN_PRODUCTS,
    CUSTOMERS,
    LOANS,
    REPAYMENT_SCHEDULE,
    LOAN_TRANSACTIONS,
    COLLECTION_ACTIONS,
)
ALL_TABLES = CORE_BANKING_TABLES + (GATEWAY_SETTLEMENTS,)

QUARANTINE_DDL = """
CREATE TABLE IF NOT EXISTS raw.quarantine (
  source VARCHAR,
  record_key VARCHAR,
  reason VARCHAR,
  raw_row VARCHAR,
  row_hash VARCHAR,
  first_seen_date DATE,
  first_seen_at TIMESTAMP
)"""


# The lists handed to the collection team (without contact data), read back by dbt to tell
# which strategy drove each action. Created here so dbt can read it before the first list.
PRIORITY_LIST_HISTORY_DDL = """
CREATE TABLE IF NOT EXISTS raw.collection_priority_list_history (
  as_of_date DATE, priority_rank INTEGER, loan_id VARCHAR, dpd INTEGER, bucket VARCHAR, risk_score DOUBLE,
  risk_tier VARCHAR, priority_score DOUBLE, recommended_action VARCHAR, strategy VARCHAR, capacity_limited BOOLEAN
)"""


def create_raw_schema(con) -> None:
    """Create schema raw and every raw table (idempotent)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    for spec in ALL_TABLES:
        con.execute(spec.ddl)
    con.execute(QUARANTINE_DDL)
    con.execute(PRIORITY_LIST_HISTORY_DDL)
    _move_list_history_out_of_marts(con)


def _move_list_history_out_of_marts(con) -> None:
    """Warehouses built before the list history moved to raw keep their lists."""
    if table_exists(con, "marts.collection_priority_list_history"):
        con.execute("BEGIN TRANSACTION")
        con.execute("INSERT INTO raw.collection_priority_list_history SELECT * FROM marts.collection_priority_list_history "
                    "WHERE as_of_date NOT IN (SELECT DISTINCT as_of_date FROM raw.collection_priority_list_history)")
        con.execute("DROP TABLE marts.collection_priority_list_history")
        con.execute("COMMIT")
