select
    customer_id,
    full_name,
    national_id,
    phone,
    email,
    birth_date,
    province,
    monthly_income,
    employment_type,
    do_not_contact,
    created_at,
    updated_at,
    _loaded_at as loaded_at
from {{ source('core_banking', 'customers') }}
