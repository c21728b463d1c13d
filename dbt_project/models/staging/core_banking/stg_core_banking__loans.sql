select
    loan_id,
    customer_id,
    product_id,
    principal,
    annual_rate,
    term_months,
    disbursed_on,
    channel,
    status,
    status_changed_on,
    updated_at,
    _loaded_at as loaded_at
from {{ source('core_banking', 'loans') }}
