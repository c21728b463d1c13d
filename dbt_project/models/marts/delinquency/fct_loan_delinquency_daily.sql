{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='as_of_date',
    on_schema_change='append_new_columns',
    contract={'enforced': true},
    pre_hook="{% if is_incremental() %}delete from {{ this }} where as_of_date = {{ business_date() }}{% endif %}",
) }}
{#-
  One row per loan on book at the end of D. Re-running D replaces D's rows exactly
  (pre-hook delete, also when D now has no rows); other dates are untouched.
-#}
{%- set D = business_date() -%}

select
    s.as_of_date,
    s.loan_id,
    c.customer_key,
    s.product_id,
    p.product_type,
    s.channel,
    coalesce(c.province, 'unknown') as province,
    s.disbursed_on,
    cast(s.principal as decimal(18, 2)) as principal,
    s.outstanding_principal,
    s.overdue_amount,
    s.dpd,
    s.missed_installments,
    b.bucket,
    b.severity,
    b.five_category,
    s.missed_installments >= {{ policy('flag_missed_installments') }} as flag_missed_2plus,
    s.overdue_amount > {{ policy('flag_large_overdue_amount') }} as flag_large_overdue,
    coalesce(f.flag_failed_debits, false) as flag_failed_debits,
    s.first_installment_unpaid and s.dpd >= {{ policy('flag_first_payment_default_dpd') }}
        as flag_first_payment_default
from {{ ref('int_loan_state_on_date') }} as s
inner join {{ ref('delinquency_buckets') }} as b
    on s.dpd >= b.dpd_from and (b.dpd_to is null or s.dpd <= b.dpd_to)
left join {{ ref('stg_core_banking__loan_products') }} as p on p.product_id = s.product_id
left join {{ ref('int_customers_pseudonymised') }} as c on c.customer_id = s.customer_id
left join {{ ref('int_failed_debits_on_date') }} as f on f.loan_id = s.loan_id and f.as_of_date = s.as_of_date
where s.is_on_book
  and s.as_of_date = {{ D }}
