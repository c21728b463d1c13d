{{ config(materialized='table') }}
{#-
  Risk-model features of every loan on book at the end of D, as known on D (macro
  ml_features, the same code as the training snapshots). Rebuilt for each business date;
  scored by the risk_scores asset.
-#}
{{ ml_features(ref('int_loan_state_on_date')) }}
