{#-
  The business date D as a SQL DATE literal, from var business_date ('YYYY-MM-DD').
  Fails clearly at execution when the var is missing or malformed. While dbt only
  parses (execute = false) a placeholder is returned so `dbt parse` works without vars.
-#}
{% macro business_date() -%}
    {%- set raw = var('business_date', none) -%}
    {%- if raw is none or (raw | string | trim) == '' -%}
        {%- if execute -%}
            {{ exceptions.raise_compiler_error(
                "var 'business_date' is required (YYYY-MM-DD), e.g. dbt build --vars '{business_date: 2025-05-20}'") }}
        {%- endif -%}
        {{ return("date '1970-01-01'") }}
    {%- endif -%}
    {%- set text = raw | string | trim -%}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', text) -%}
        {{ exceptions.raise_compiler_error("var 'business_date' must be YYYY-MM-DD, got '" ~ text ~ "'") }}
    {%- endif -%}
    {%- set parsed = modules.datetime.datetime.strptime(text, '%Y-%m-%d') -%}
    {{ return("date '" ~ text ~ "'") }}
{%- endmacro %}
