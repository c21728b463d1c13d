{#-
  Data tests on the marts carry `where: "as_of_date = __business_date__"` (dbt_project.yml)
  so a daily build tests only the day it wrote, not the whole history.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- if '__business_date__' in where -%}
            {%- set where = where | replace('__business_date__', business_date()) -%}
        {%- endif -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {% do return(filtered) %}
    {%- else -%}
        {% do return(relation) %}
    {%- endif -%}
{%- endmacro %}
