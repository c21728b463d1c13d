{#-
  Month-grained marts hold one row set per month and a month's rows, once computable, never
  change (every input is "as known on" a past month-end). An incremental run therefore builds
  only the months not yet in the table: `expr not in (the target's values of column)`.
  expr is the month as computed from the source rows; column the mart's month column.
-#}
{% macro months_not_built(expr, column) -%}
    {%- if is_incremental() -%}
        and {{ expr }} not in (select distinct t.{{ column }} from {{ this }} as t)
    {%- endif -%}
{%- endmacro %}
