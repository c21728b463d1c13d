{#-
  A configurable threshold from seed policy_thresholds (name, value DECIMAL), as an
  uncorrelated scalar subquery: thresholds live only in the seed, never in SQL.
  The singular test assert_policy_thresholds_complete checks every name used exists.
-#}
{% macro policy(name) -%}
    (select value from {{ ref('policy_thresholds') }} where name = '{{ name }}')
{%- endmacro %}
