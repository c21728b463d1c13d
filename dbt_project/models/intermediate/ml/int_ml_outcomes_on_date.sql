{{ config(materialized='table') }}
{#-
  The realized section 6 outcome of the loans on book at D - 30, now that D has come: their
  state as published for D - 30 (fct_loan_delinquency_daily, the state the D - 30 scores were
  computed on) against their state as known on D (int_loan_state_on_date), through the same
  macro roll_forward_labels as the training labels. The risk_score_monitoring asset compares
  them with the scores stored for D - 30; no rows when D - 30 was never run (no scores either).
  Reading the published day instead of recomputing the whole book as known on D - 30 saves
  that computation every day (6 s at 1M loans).
-#}
{%- set D = business_date() -%}
with starts as (
    select f.as_of_date, f.loan_id, f.dpd, true as is_on_book
    from {{ ref('fct_loan_delinquency_daily') }} as f
    where f.as_of_date = cast({{ D }} - 30 as date)
)

{{ roll_forward_labels('starts', ref('int_loan_state_on_date')) }}
