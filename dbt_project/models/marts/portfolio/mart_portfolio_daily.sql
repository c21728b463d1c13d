{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='as_of_date',
    on_schema_change='append_new_columns',
    contract={'enforced': true},
    pre_hook="{% if is_incremental() %}delete from {{ this }} where as_of_date = {{ business_date() }}{% endif %}",
) }}
{#- Portfolio metrics per D and segment (business_rules.md section 4), from the day's fct rows. -#}
{%- set D = business_date() -%}

with loans as (
    select * from {{ ref('fct_loan_delinquency_daily') }}
    where as_of_date = {{ D }}
),

segmented as (
    select 'all' as segment_type, 'all' as segment_value, * from loans
    union all
    select 'product_type', product_type, * from loans
    union all
    select 'channel', channel, * from loans
    union all
    select 'province', coalesce(province, 'unknown'), * from loans
),

summed as (
    select
        as_of_date,
        segment_type,
        segment_value,
        count(*) as loans_on_book,
        sum(outstanding_principal) as outstanding_principal,
        count(*) filter (where dpd > 0) as overdue_loans,
        sum(overdue_amount) as overdue_amount,
        coalesce(sum(outstanding_principal) filter (where dpd > 0), 0) as op_dpd_0,
        coalesce(sum(outstanding_principal) filter (where dpd > 30), 0) as op_dpd_30,
        coalesce(sum(outstanding_principal) filter (where dpd > 60), 0) as op_dpd_60,
        coalesce(sum(outstanding_principal) filter (where dpd > 90), 0) as op_dpd_90
    from segmented
    group by as_of_date, segment_type, segment_value
)

select
    as_of_date,
    segment_type,
    segment_value,
    cast(loans_on_book as bigint) as loans_on_book,
    cast(outstanding_principal as decimal(18, 2)) as outstanding_principal,
    cast(overdue_loans as bigint) as overdue_loans,
    cast(overdue_amount as decimal(18, 2)) as overdue_amount,
    cast(overdue_loans as double) / nullif(cast(loans_on_book as double), 0) as overdue_rate_count,
    cast(op_dpd_0 as double) / nullif(cast(outstanding_principal as double), 0) as par_0,
    cast(op_dpd_30 as double) / nullif(cast(outstanding_principal as double), 0) as par_30,
    cast(op_dpd_60 as double) / nullif(cast(outstanding_principal as double), 0) as par_60,
    cast(op_dpd_90 as double) / nullif(cast(outstanding_principal as double), 0) as par_90
from summed
