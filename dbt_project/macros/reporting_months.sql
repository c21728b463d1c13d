{#-
  Month-grained marts hold one row set per month and a month's rows, once computable, never
  change (every input is "as known on" a past month-end). An incremental run therefore builds
  only the months not yet in the table: `column not in (months already built)`.
-#}
{% macro months_not_built(column) -%}
    {%- if is_incremental() -%}
        and {{ column }} not in (select distinct {{ column }} from {{ this }})
    {%- endif -%}
{%- endmacro %}
