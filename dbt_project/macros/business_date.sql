{#-
  The business date D as a SQL DATE literal, from var business_date ('YYYY-MM-DD') or, when
  the var is not given, environment variable ARREARS_BUSINESS_DATE (how the daily run passes
  it: --vars change the project's configuration and make dbt re-parse every file, while an
  environment variable read only at execution keeps partial parsing). Fails clearly at
  execution when neither is set or the value is malformed. While dbt only parses
  (execute = false) a placeholder is returned so `dbt parse` works without a date.
-#}
{% macro business_date() -%}
    {%- if not execute -%}
        {{ return("date '1970-01-01'") }}
    {%- endif -%}
    {%- set raw = var('business_date', none) -%}
    {%- if raw is none or (raw | string | trim) == '' -%}
        {%- set raw = env_var('ARREARS_BUSINESS_DATE', '') -%}
    {%- endif -%}
    {%- if (raw | string | trim) == '' -%}
        {{ exceptions.raise_compiler_error(
            "the business date is required (YYYY-MM-DD): dbt build --vars '{business_date: 2025-05-20}'"
            ~ " or environment variable ARREARS_BUSINESS_DATE") }}
    {%- endif -%}
    {%- set text = raw | string | trim -%}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', text) -%}
        {{ exceptions.raise_compiler_error("var 'business_date' must be YYYY-MM-DD, got '" ~ text ~ "'") }}
    {%- endif -%}
    {%- set parsed = modules.datetime.datetime.strptime(text, '%Y-%m-%d') -%}
    {{ return("date '" ~ text ~ "'") }}
{%- endmacro %}
