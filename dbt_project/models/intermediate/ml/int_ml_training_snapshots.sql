{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='append_new_columns') }}
{#-
  Training rows of the risk model: every loan on book at a month-end m whose 30-day
  window has passed (m + 30 <= D), its features as known on m (macro ml_features, the
  same code as daily scoring) and its section 6 label from the state as known on m + 30
  (macro roll_forward_labels). Both snapshots come from int_loan_state_snapshots. A
  matured month-end never changes, so each is computed once (append).
-#}
{%- set D = business_date() -%}
{%- set starts -%}
(
    select * from {{ ref('int_loan_state_snapshots') }}
    where is_month_end
      and as_of_date + 30 <= {{ D }}
    {% if is_incremental() %}
      and as_of_date not in (select distinct as_of_date from {{ this }})
    {% endif %}
)
{%- endset -%}

with features as (
    {{ ml_features(starts) }}
),

labels as (
    {{ roll_forward_labels(starts, ref('int_loan_state_snapshots')) }}
)

select f.*, l.state_after_30d, l.label
from features as f
inner join labels as l on l.as_of_date = f.as_of_date and l.loan_id = f.loan_id
