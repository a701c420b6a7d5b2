{#- Money: the currency of an amount, conversion to the reporting currency, rounding and exact sums. -#}

{#- The currency an amount's own text names (symbol or code), null when it names none. -#}
{% macro currency_from_amount_text(expr) -%}
    {#- A bare $ or ¥ is the default currency when that is a dollar or a yen / yuan: an Australian shop's $ is AUD. -#}
    {%- set default = var("default_currency") | upper -%}
    {%- set dollar = default if default in ['USD', 'AUD', 'CAD', 'NZD', 'HKD', 'SGD', 'TWD', 'MXN'] else 'USD' -%}
    {%- set yen = default if default in ['CNY', 'JPY'] else 'CNY' -%}
    {#- A dollar with its country's letters names its currency (R$ 45,90 are reais, NT$ Taiwan dollars). CA$ and US$
        are tested before A$ and S$, which they contain. -#}
    case
        {#- Most amounts are plain numbers: one cast instead of every pattern below. #}
        when {{ crm.try_cast(expr, 'double') }} is not null then null
        when upper({{ expr }}) like '%USD%' or upper({{ expr }}) like '%US$%' then 'USD'
        when upper({{ expr }}) like '%R$%' or upper({{ expr }}) like '%BRL%' then 'BRL'
        when upper({{ expr }}) like '%HK$%' or upper({{ expr }}) like '%HKD%' then 'HKD'
        when upper({{ expr }}) like '%NT$%' or upper({{ expr }}) like '%TWD%' then 'TWD'
        when upper({{ expr }}) like '%NZ$%' or upper({{ expr }}) like '%NZD%' then 'NZD'
        when upper({{ expr }}) like '%MX$%' or upper({{ expr }}) like '%MXN%' then 'MXN'
        when upper({{ expr }}) like '%CA$%' or upper({{ expr }}) like '%C$%' or upper({{ expr }}) like '%CAD%' then 'CAD'
        when upper({{ expr }}) like '%AU$%' or upper({{ expr }}) like '%A$%' or upper({{ expr }}) like '%AUD%' then 'AUD'
        when upper({{ expr }}) like '%S$%' or upper({{ expr }}) like '%SGD%' then 'SGD'
        when {{ expr }} like '%$%' then '{{ dollar }}'
        when {{ expr }} like '%元%' or upper({{ expr }}) like '%RMB%' or upper({{ expr }}) like '%CNY%' then 'CNY'
        when {{ expr }} like '%円%' or upper({{ expr }}) like '%JPY%' then 'JPY'
        when {{ expr }} like '%¥%' or {{ expr }} like '%￥%' then '{{ yen }}'
        when {{ expr }} like '%€%' or upper({{ expr }}) like '%EUR%' then 'EUR'
        when {{ expr }} like '%£%' or upper({{ expr }}) like '%GBP%' then 'GBP'
        when {{ expr }} like '%₩%' or {{ expr }} like '%￦%' or {{ expr }} like '%원%' or upper({{ expr }}) like '%KRW%'
            then 'KRW'
    end
{%- endmacro %}


{#- Currency code for a row: the currency column, else the amount's symbol, else the configured default. -#}
{% macro resolve_currency(currency_expr, amount_expr) -%}
    upper(coalesce(nullif(trim({{ currency_expr }}), ''), {{ crm.currency_from_amount_text(amount_expr) }}, '{{ var("default_currency") }}'))
{%- endmacro %}

{#- Amount converted to the reporting currency with seeds/currency_rates.csv; `rates` is the alias of a join
    to that seed on the row's currency. -#}
{% macro to_reporting_currency(amount_expr, rates_alias) -%}
    {{ amount_expr }} * {{ rates_alias }}.usd_per_unit / (
        select usd_per_unit from {{ ref('currency_rates') }} where currency = '{{ var("reporting_currency") }}'
    )
{%- endmacro %}


{#- Money rounded to the cent. -#}
{% macro to_cents(expr) -%}
    cast(cast({{ expr }} as decimal(18, 2)) as double)
{%- endmacro %}


{#- Sum of money, exact: a sum of doubles depends on the order a parallel aggregation adds them in, so the
    same data could give totals that differ in the last bit from one refresh to the next. -#}
{% macro money_sum(expr) -%}
    cast(sum(cast({{ expr }} as decimal(18, 2))) as double)
{%- endmacro %}
