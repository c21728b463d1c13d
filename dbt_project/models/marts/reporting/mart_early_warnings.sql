{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='as_of_date',
    on_schema_change='append_new_columns',
    contract={'enforced': true},
    pre_hook="{% if is_incremental() %}delete from {{ this }} where as_of_date = {{ business_date() }}{% endif %}",
) }}
{#-
  Portfolio warnings on D (business_rules.md section 5), from the overall row of
  mart_portfolio_daily; one row per condition that holds:
  - par30_above_line: par_30 > par30_warning_line;
  - par30_monthly_rise: par_30 - par_30 of the same day of the previous month (clamped to that
    month's length, e.g. 03-31 -> 02-28) > par30_monthly_rise; skipped when that day was never
    processed (no overall row for it).
  Re-running D replaces D's rows (pre-hook delete, also when no warning holds any more).
-#}
{%- set D = business_date() -%}

with today as (
    select as_of_date, par_30 from {{ ref('mart_portfolio_daily') }}
    where as_of_date = {{ D }} and segment_type = 'all'
),

previous as (
    select par_30 from {{ ref('mart_portfolio_daily') }}
    where as_of_date = cast({{ D }} - interval 1 month as date) and segment_type = 'all'
),

thresholds as (
    select cast({{ policy('par30_warning_line') }} as double) as warning_line,
           cast({{ policy('par30_monthly_rise') }} as double) as monthly_rise
),

above_line as (
    select t.as_of_date, 'par30_above_line' as rule, t.par_30 as value, h.warning_line as threshold,
           'PAR30 ' || printf('%.2f', 100 * t.par_30) || '% is above the warning line of '
               || printf('%.2f', 100 * h.warning_line) || '%' as message
    from today as t cross join thresholds as h
    where t.par_30 > h.warning_line
),

monthly_rise as (
    select t.as_of_date, 'par30_monthly_rise' as rule, t.par_30 - p.par_30 as value, h.monthly_rise as threshold,
           'PAR30 rose by ' || printf('%.2f', 100 * (t.par_30 - p.par_30)) || ' percentage points since '
               || strftime(cast({{ D }} - interval 1 month as date), '%Y-%m-%d')
               || ' (' || printf('%.2f', 100 * p.par_30) || '% -> ' || printf('%.2f', 100 * t.par_30)
               || '%), more than ' || printf('%.2f', 100 * h.monthly_rise) || ' points' as message
    from today as t cross join previous as p cross join thresholds as h
    where t.par_30 - p.par_30 > h.monthly_rise
)

select as_of_date, cast(rule as varchar) as rule, cast(value as double) as value,
       cast(threshold as double) as threshold, cast(message as varchar) as message
from above_line
union all
select as_of_date, rule, value, threshold, message
from monthly_rise
