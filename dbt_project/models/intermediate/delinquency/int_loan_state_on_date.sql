{{ config(materialized='table') }}
{#-
  One row per loan that exists on D (disbursed_on <= D), as known at the end of D
  (business_rules.md sections 1 and 2; the rules live in macro loan_state). Rebuilt for
  each business date; history lives in the marts.
-#}
{{ loan_state('(select ' ~ business_date() ~ ' as as_of_date)') }}
