select
    product_id,
    product_name,
    product_type,
    term_months,
    annual_rate,
    _loaded_at as loaded_at
from {{ source('core_banking', 'loan_products') }}
