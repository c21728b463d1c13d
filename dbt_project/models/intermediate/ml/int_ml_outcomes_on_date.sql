{{ config(materialized='table') }}
{#-
  The realized section 6 outcome of the loans on book at D - 30, now that D has come:
  their state as known on D - 30 (macro loan_state) against their state as known on D
  (int_loan_state_on_date), through the same macro roll_forward_labels as the training
  labels. The risk_score_monitoring asset compares them with the scores stored for D - 30.
-#}
{%- set D = business_date() -%}
with starts as (
    {{ loan_state('(select cast(' ~ D ~ ' - 30 as date) as as_of_date)') }}
)

{{ roll_forward_labels('starts', ref('int_loan_state_on_date')) }}
