{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='customer_id',
    on_schema_change='append_new_columns',
) }}
{#-
  customer_key = HMAC-SHA256(ARREARS_PII_KEY, customer_id), computed once per customer
  (and again when the row changes). pii_key_check is the HMAC of a constant: when the
  key is rotated it no longer matches and every customer is recomputed.
  customer_id stays here only as the join key for the intermediate layer; marts carry
  customer_key and the coarse attributes, never names, national IDs, phones or emails.
-#}
with source as (
    select * from {{ ref('stg_core_banking__customers') }}
    {% if is_incremental() %}
    where (select max(pii_key_check) from {{ this }}) is distinct from arrears_customer_key('arrears-key-check')
       or customer_id not in (select customer_id from {{ this }})
       or updated_at > (select max(updated_at) from {{ this }})
       or loaded_at > (select max(loaded_at) from {{ this }})
    {% endif %}
)

select
    customer_id,
    arrears_customer_key(customer_id) as customer_key,
    province,
    employment_type,
    monthly_income,
    birth_date,
    do_not_contact,
    updated_at,
    loaded_at,
    arrears_customer_key('arrears-key-check') as pii_key_check
from source
