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


{#-
  The latest month `expr` (over the target's rows) an incremental run finds already built, as a
  date literal, read when the model runs; date '1900-01-01' on a full build. Months are built in
  order and never change, so every month after it is one not yet built: the month-end states are
  read from after it only (a literal prunes the scan of the snapshots; the `not in` of
  months_not_built alone still read every month-end of the history, about 4 s a day at 1M loans).
-#}
{% macro latest_month_built(expr) -%}
    {%- set latest = none -%}
    {%- if execute and is_incremental() -%}
        {%- set latest = run_query("select cast(max(" ~ expr ~ ") as date) from " ~ this).columns[0].values()[0] -%}
    {%- endif -%}
    date '{{ latest or "1900-01-01" }}'
{%- endmacro %}
