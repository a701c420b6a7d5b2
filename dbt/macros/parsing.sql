{#- Parsing: how a raw text value from a CRM export becomes a typed value (dates, amounts, numbers, booleans).
    The DuckDB versions are unit-tested through the base models (see _crm__models.yml). -#}

{#- A date or datetime written as 2025-08-27, 2025/8/27, 2025-08-27 14:05:00, 2025-08-27T14:05, 2025年8月27日
    (optionally followed by a time). Anything else, or an impossible date, gives null. -#}
{% macro parse_timestamp(expr) -%}
    {{ return(adapter.dispatch('parse_timestamp', 'crm')(expr)) }}
{%- endmacro %}

{% macro duckdb__parse_timestamp(expr) -%}
    {#- Most exports write ISO-like text (2025-08-27, 2025/8/27 14:05, with seconds or fractions): DuckDB's cast reads
        it as it is, three times faster than strptime and ten times faster than normalising first, so only the rest is
        normalised. The cast also reads words ('epoch', 'infinity') and BC years, which are no order dates, and drops
        a trailing AM/PM (2:05 PM as 02:05; ingestion rewrites such times, dagster_project/ingest/values.py): hence
        the guards. -#}
    coalesce(try_cast(case when ascii({{ expr }}) between 48 and 57 and {{ expr }} not ilike '%bc'
                                and {{ expr }} not ilike '%m' then {{ expr }} end as timestamp), try_strptime(
        trim(regexp_replace(
            replace(replace(replace(replace(replace(trim({{ expr }}), '年', '-'), '月', '-'), '日', ' '), '/', '-'), 'T', ' '),
            '\s+', ' ', 'g')),
        ['%Y-%m-%d %H:%M:%S', '%Y-%m-%d %H:%M:%S.%f', '%Y-%m-%d %H:%M', '%Y-%m-%d']
    ))
{%- endmacro %}

{#- Spark reads the same texts: normalised as DuckDB's second attempt normalises them, and cast only when the whole
    text is a date with an optional time (Spark's cast alone would also take '2025', '2025-08' or a time zone). -#}
{% macro spark__parse_timestamp(expr) -%}
    {%- set normalised = "trim(regexp_replace(replace(replace(replace(replace(replace(trim(" ~ expr
        ~ "), '年', '-'), '月', '-'), '日', ' '), '/', '-'), 'T', ' '), '\\\\s+', ' '))" -%}
    case when {{ normalised }} rlike '^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}( [0-9]{1,2}:[0-9]{1,2}(:[0-9]{1,2}([.][0-9]{1,9})?)?)?$'
        then cast({{ normalised }} as timestamp) end
{%- endmacro %}

{% macro default__parse_timestamp(expr) -%}
    {{ exceptions.raise_compiler_error("crm.parse_timestamp has no implementation for adapter '" ~ adapter.type() ~ "'") }}
{%- endmacro %}


{% macro parse_date(expr) -%}
    cast({{ crm.parse_timestamp(expr) }} as date)
{%- endmacro %}


{#- An amount such as 1234.5, 1,234.50, ¥1234.5, $12, R$ 12.90, 12元, 1200円, RMB 12, -3.00: the symbols and codes
    crm.currency_from_amount_text reads are removed. Null when not a finite number. -#}
{% macro parse_amount(expr) -%}
    {#- No-break spaces (U+00A0, U+202F) group thousands in French and Swiss number formatting. A country's letters are
        removed with their dollar sign (R$, NT$), never alone; letters and codes in either case, as
        crm.currency_from_amount_text reads them. -#}
    {{ crm.finite_or_null(crm.plain_or_stripped_number(expr, '(?i)(US|R|HK|NT|NZ|MX|CA|C|AU|A|S)[$]|[¥￥$€£₩￦,\\s  ]'
        ~ '|RMB|CNY|USD|EUR|GBP|KRW|BRL|HKD|TWD|NZD|MXN|CAD|AUD|SGD|JPY|元|円|원')) }}
{%- endmacro %}


{#- The text as a double when it is a plain number, else with the pattern's characters removed first: stripping
    with a regular expression costs ten times a cast, and most values need none. -#}
{% macro plain_or_stripped_number(expr, pattern) -%}
    coalesce({{ crm.try_cast(expr, 'double') }}, {{ crm.try_cast(crm.strip_pattern(expr, pattern), 'double') }})
{%- endmacro %}


{#- A plain number such as 3, 2.5 or 1,000. Null when not a finite number. -#}
{% macro parse_number(expr) -%}
    {{ crm.finite_or_null(crm.plain_or_stripped_number(expr, '[,\\s]')) }}
{%- endmacro %}

{#- Whole number; null when the text is not one. -#}
{% macro parse_integer(expr) -%}
    {{ crm.try_cast(crm.plain_or_stripped_number(expr, '[,\\s]'), 'bigint') }}
{%- endmacro %}
