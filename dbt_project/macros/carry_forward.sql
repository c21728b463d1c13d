{#-
  Shared by the tables that carry their previous build forward (int_loan_state_on_date,
  int_loan_first_dpd30): whether this build may start from the existing table, and what a
  build knows (the latest load stamps of its inputs and the tolerance), stored in every row
  (models check var carry_state_forward themselves: unit tests override it on the model)
  so that the next build recomputes only loans with inputs loaded after it.
-#}
{% macro can_carry_forward() -%}
    {%- if not execute or flags.FULL_REFRESH -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set existing = adapter.get_relation(database=this.database, schema=this.schema, identifier=this.identifier) -%}
    {{ return(existing is not none
              and 'ledger_known_until' in (adapter.get_columns_in_relation(existing) | map(attribute='name') | list)) }}
{%- endmacro %}

{% macro load_watermarks() -%}
        (select max(known_at) from {{ ref('int_ledger_counted') }}) as ledger_known_until,
        (select max(loaded_at) from {{ ref('int_installments_cumulated') }}) as schedule_loaded_until,
        (select max(loaded_at) from {{ ref('stg_core_banking__loans') }}) as loans_loaded_until,
        cast({{ policy('paid_tolerance') }} as decimal(18, 2)) as paid_tolerance
{%- endmacro %}
