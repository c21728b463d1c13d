{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='append_new_columns') }}
{#-
  Training rows of the risk model: every loan on book at a month-end m whose 30-day
  window has passed (m + 30 <= D), its features as known on m (macro ml_features, the
  same code as daily scoring; as scored on m when m was run as a business date) and its
  section 6 label from the state as known on m + 30 (macro roll_forward_labels). Both
  snapshots come from int_loan_state_snapshots. A matured month-end never changes, so each
  is computed once (append).
-#}
{%- set D = business_date() -%}
{#- Month-ends are added oldest first, at most about `training_rows_per_run` loan rows per
    dbt run (at least one month-end; var, else env ARREARS_TRAINING_ROWS_PER_RUN, else 500k),
    so a first load of a large book stays within the memory budget; the dbt asset runs this
    model again until every matured month-end is in. -#}
{%- set rows_per_run = var('training_rows_per_run', env_var('ARREARS_TRAINING_ROWS_PER_RUN', '500000')) | int -%}
{%- set pending -%}
(
    select as_of_date, count(*) as loans
    from {{ ref('int_loan_state_snapshots') }}
    where is_month_end
      and is_on_book
      and as_of_date + 30 <= {{ D }}
    {% if is_incremental() %}
      and as_of_date not in (select distinct as_of_date from {{ this }})
    {% endif %}
    group by as_of_date
)
{%- endset -%}
{%- set starts -%}
(
    select * from {{ ref('int_loan_state_snapshots') }}
    where is_month_end
      and as_of_date in (
          select as_of_date
          from (select as_of_date, loans, sum(loans) over (order by as_of_date) as cum_loans from {{ pending }})
          where cum_loans - loans < {{ rows_per_run }}
      )
)
{%- endset -%}

{#- A month-end this pipeline scored keeps its features (int_ml_features_month_end): only the
    others (a first load's history) are computed here. -#}
{%- set kept = ref('int_ml_features_month_end') -%}
{%- set starts_to_compute -%}
(select * from {{ starts }} as s where s.as_of_date not in (select distinct as_of_date from {{ kept }}))
{%- endset -%}

with features as (
    select * from {{ kept }}
    where as_of_date in (select distinct as_of_date from {{ starts }})
    union all by name
    select * from ({{ ml_features(starts_to_compute) }})
),

labels as (
    {{ roll_forward_labels(starts, ref('int_loan_state_snapshots')) }}
)

select f.*, l.state_after_30d, l.label
from features as f
inner join labels as l on l.as_of_date = f.as_of_date and l.loan_id = f.loan_id
