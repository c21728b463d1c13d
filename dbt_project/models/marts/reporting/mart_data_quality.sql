{{ config(
    materialized='view',
    contract={'enforced': true},
    pre_hook="create schema if not exists raw; create table if not exists raw.expectation_failures (as_of_date date, source varchar, expectation varchar, severity varchar, rows bigint, checked_at timestamp)",
) }}
{#-
  Data quality per business date (business_rules.md section 9): rows quarantined, by the
  date they were first seen, source and reason code, plus failed expectations recorded by the
  quality checks (orchestration/quality/checks.py) as reason 'expectation:<name>'. A view, so
  the failures recorded by checks that run after dbt (on the marts) are in the published copy.
  Only dates <= D.
-#}
{%- set D = business_date() -%}

with quarantined as (
    select first_seen_date as as_of_date, source, reason, count(*) as rows
    from raw.quarantine
    where first_seen_date <= {{ D }}
    group by all
),

expectations as (
    select as_of_date, source, 'expectation:' || expectation as reason, sum(rows) as rows
    from raw.expectation_failures
    where as_of_date <= {{ D }}
    group by all
)

select cast(as_of_date as date) as as_of_date, cast(source as varchar) as source,
       cast(reason as varchar) as reason, cast(rows as bigint) as rows
from quarantined
union all
select as_of_date, source, reason, cast(rows as bigint)
from expectations
