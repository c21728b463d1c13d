{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='append_new_columns') }}
{#-
  Loan state on snapshot dates, as known on each of them (macro loan_state): every
  month-end m <= D (roll rates, vintages, cures, recoveries) and every m + 30 days <= D
  (the 30-day outcome of a month-end snapshot, the risk model's label). A state "as known
  on" a past date never changes once that date has passed, so each snapshot date is
  computed once, by the first business date that reaches it.
-#}
{%- set D = business_date() -%}
{#- A first load of a large book has ~30 snapshot dates to compute: more than DuckDB's memory
    limit holds in one query at 1M loans. At most about `snapshot_rows_per_run` loan rows are
    computed per dbt run (var, else env ARREARS_SNAPSHOT_ROWS_PER_RUN, else 4M); the dbt asset
    runs the earlier dates in passes before the day's build, so the build sees them all. -#}
{%- set rows_per_run = var('snapshot_rows_per_run', env_var('ARREARS_SNAPSHOT_ROWS_PER_RUN', '4000000')) | int -%}
{%- set calendar -%}
(
    with month_ends as (
        select cast(last_day(m) as date) as month_end
        from (select min(disbursed_on) as first_day from {{ ref('stg_core_banking__loans') }}) as b,
             generate_series(cast(date_trunc('month', b.first_day) as timestamp),
                             cast({{ D }} as timestamp), interval 1 month) as g(m)
        where b.first_day is not null
    ),
    snapshot_dates as (
        select month_end as as_of_date from month_ends
        union
        select cast(month_end + 30 as date) from month_ends
    ),
    pending as (
        select as_of_date,
               (select count(*) from {{ ref('stg_core_banking__loans') }} as l
                where l.disbursed_on <= snapshot_dates.as_of_date) as loans
        from snapshot_dates
        where as_of_date <= {{ D }}
        {% if is_incremental() %}
          and as_of_date not in (select distinct as_of_date from {{ this }})
        {% endif %}
    )
    -- oldest first, at most about rows_per_run loan rows (at least one date) per run
    select as_of_date
    from (select as_of_date, loans, sum(loans) over (order by as_of_date) as cum_loans from pending)
    where cum_loans - loans < {{ rows_per_run }}
)
{%- endset -%}

select s.*, s.as_of_date = last_day(s.as_of_date) as is_month_end
from ({{ loan_state(calendar) }}) as s
