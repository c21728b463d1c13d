select
    settlement_date,
    file_name,
    line_no,
    payment_id,
    loan_id,
    amount,
    currency,
    status,
    channel,
    initiated_at,
    cast(initiated_at as date) as initiated_on,
    settled_at,
    failure_reason,
    _loaded_at as loaded_at
from {{ source('gateway', 'gateway_settlements') }}
