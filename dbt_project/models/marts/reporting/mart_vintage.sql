{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='append_new_columns',
    contract={'enforced': true},
) }}
{#-
  Vintage curves (business_rules.md section 4). Cohort = calendar month of disbursed_on; MOB k
  is the k-th month-end after the cohort month (MOB 0 = the cohort month's own month-end),
  shown while that month-end is <= D. Each (cohort, MOB) depends only on states as known on
  past days, so an incremental run adds only the month-ends not yet built (a month-end run
  adds MOB k for every cohort, and MOB 0 of the month's cohort).
-#}
{%- set D = business_date() -%}

with states as (
    select s.*, cast(date_trunc('month', s.disbursed_on) as date) as cohort_month
    from {{ ref('int_month_end_loan_states') }} as s
    where s.month_end <= {{ D }}
      and s.month_end > {{ latest_month_built('last_day(cohort_month + to_months(mob))') }}
      {% if is_incremental() -%}
      and s.month_end not in (
          select distinct cast(last_day(t.cohort_month + to_months(t.mob)) as date) from {{ this }} as t)
      {%- endif %}
),

-- principal written off (write_off rows known on the month-end) of loans off book as written_off
written_off as (
    select s.month_end, s.loan_id, sum(coalesce(t.principal_portion, 0)) as written_off_principal
    from states as s
    inner join {{ ref('stg_core_banking__loan_transactions') }} as t
        on t.loan_id = s.loan_id and t.txn_type = 'write_off'
       and t.value_date <= s.month_end and t.booked_on <= s.month_end
    where s.left_book_as = 'written_off'
    group by s.month_end, s.loan_id
),

per_loan as (
    select
        s.cohort_month,
        s.month_end,
        s.loan_id,
        s.principal,
        case when s.is_on_book and s.dpd > 30 then s.outstanding_principal else 0 end
            + coalesce(w.written_off_principal, 0) as dpd30_balance,
        s.left_book_as = 'written_off' or f.first_dpd30_on <= s.month_end as ever_dpd30
    from states as s
    left join written_off as w on w.month_end = s.month_end and w.loan_id = s.loan_id
    left join {{ ref('int_loan_first_dpd30') }} as f on f.loan_id = s.loan_id
),

cohorts as (
    select
        cohort_month,
        cast(datediff('month', cohort_month, month_end) as integer) as mob,
        count(*) as loans,
        sum(principal) as disbursed_principal,
        sum(dpd30_balance) as dpd30_balance,
        count(*) filter (where ever_dpd30) as ever_dpd30_loans
    from per_loan
    group by cohort_month, month_end
)

select
    cohort_month,
    mob,
    cast(loans as bigint) as loans,
    cast(disbursed_principal as decimal(18, 2)) as disbursed_principal,
    cast(dpd30_balance as double) / nullif(cast(disbursed_principal as double), 0) as vintage_dpd30_balance,
    cast(ever_dpd30_loans as double) / nullif(cast(loans as double), 0) as ever_dpd30_rate
from cohorts
