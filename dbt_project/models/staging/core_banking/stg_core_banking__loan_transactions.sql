select
    txn_id,
    loan_id,
    txn_type,
    amount,
    principal_portion,
    interest_portion,
    fee_portion,
    value_date,
    booked_at,
    cast(booked_at as date) as booked_on,
    reverses_txn_id,
    payment_id,
    _loaded_at as loaded_at
from {{ source('core_banking', 'loan_transactions') }}
