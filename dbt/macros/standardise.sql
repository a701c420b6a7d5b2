{#-
  Standardisation macros: how a raw text value from a CRM export becomes a typed, comparable value.
  Every engine-specific function sits behind adapter.dispatch, so running these models on another engine means
  adding `<adapter>__<macro>` versions of the macros in this file (and of date_series in dates.sql), nothing else.
  The DuckDB versions are unit-tested through stg/base models (see _crm__models.yml).
-#}

{#- Replace every match of a regular expression. -#}
{% macro replace_pattern(expr, pattern, replacement) -%}
    {{ return(adapter.dispatch('replace_pattern', 'crm')(expr, pattern, replacement)) }}
{%- endmacro %}

{% macro duckdb__replace_pattern(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, '{{ pattern }}', '{{ replacement }}', 'g')
{%- endmacro %}

{% macro default__replace_pattern(expr, pattern, replacement) -%}
    {{ exceptions.raise_compiler_error("crm.replace_pattern has no implementation for adapter '" ~ adapter.type() ~ "'") }}
{%- endmacro %}


{% macro strip_pattern(expr, pattern) -%}
    {{ crm.replace_pattern(expr, pattern, '') }}
{%- endmacro %}


{#- True when the whole text matches a regular expression. -#}
{% macro matches_pattern(expr, pattern) -%}
    {{ return(adapter.dispatch('matches_pattern', 'crm')(expr, pattern)) }}
{%- endmacro %}

{% macro duckdb__matches_pattern(expr, pattern) -%}
    regexp_full_match({{ expr }}, '{{ pattern }}')
{%- endmacro %}

{% macro default__matches_pattern(expr, pattern) -%}
    {{ exceptions.raise_compiler_error("crm.matches_pattern has no implementation for adapter '" ~ adapter.type() ~ "'") }}
{%- endmacro %}


{#- Cast that gives null instead of failing on text that is not of the type (dbt's safe_cast is a plain cast
    on DuckDB). -#}
{% macro try_cast(expr, type) -%}
    {{ return(adapter.dispatch('try_cast', 'crm')(expr, type)) }}
{%- endmacro %}

{% macro duckdb__try_cast(expr, type) -%}
    try_cast({{ expr }} as {{ type }})
{%- endmacro %}

{% macro default__try_cast(expr, type) -%}
    {{ exceptions.raise_compiler_error("crm.try_cast has no implementation for adapter '" ~ adapter.type() ~ "'") }}
{%- endmacro %}


{#- The number itself, null for NaN and infinities: try_cast reads 'nan', 'inf' and '1e400' as those, and they are
    not amounts or quantities (a NaN would pass every range check and break the money casts downstream). -#}
{% macro finite_or_null(expr) -%}
    {{ return(adapter.dispatch('finite_or_null', 'crm')(expr)) }}
{%- endmacro %}

{% macro duckdb__finite_or_null(expr) -%}
    case when isfinite({{ expr }}) then {{ expr }} end
{%- endmacro %}

{% macro default__finite_or_null(expr) -%}
    {{ exceptions.raise_compiler_error("crm.finite_or_null has no implementation for adapter '" ~ adapter.type() ~ "'") }}
{%- endmacro %}


{#- A date or datetime written as 2025-08-27, 2025/8/27, 2025-08-27 14:05:00, 2025-08-27T14:05, 2025年8月27日
    (optionally followed by a time). Anything else, or an impossible date, gives null. -#}
{% macro parse_timestamp(expr) -%}
    {{ return(adapter.dispatch('parse_timestamp', 'crm')(expr)) }}
{%- endmacro %}

{% macro duckdb__parse_timestamp(expr) -%}
    {#- Most exports write ISO-like text (2025-08-27, 2025/8/27 14:05, with seconds or fractions): DuckDB's cast reads
        it as it is, three times faster than strptime and ten times faster than normalising first, so only the rest is
        normalised. The cast also reads words ('epoch', 'infinity') and BC years, which are no order dates: hence the
        guards. -#}
    coalesce(try_cast(case when ascii({{ expr }}) between 48 and 57 and {{ expr }} not ilike '%bc' then {{ expr }} end as timestamp), try_strptime(
        trim(regexp_replace(
            replace(replace(replace(replace(replace(trim({{ expr }}), '年', '-'), '月', '-'), '日', ' '), '/', '-'), 'T', ' '),
            '\s+', ' ', 'g')),
        ['%Y-%m-%d %H:%M:%S', '%Y-%m-%d %H:%M:%S.%f', '%Y-%m-%d %H:%M', '%Y-%m-%d']
    ))
{%- endmacro %}

{% macro default__parse_timestamp(expr) -%}
    {{ exceptions.raise_compiler_error("crm.parse_timestamp has no implementation for adapter '" ~ adapter.type() ~ "'") }}
{%- endmacro %}


{% macro parse_date(expr) -%}
    cast({{ crm.parse_timestamp(expr) }} as date)
{%- endmacro %}


{#- An amount such as 1234.5, 1,234.50, ¥1234.5, $12, 12元, RMB 12, -3.00. Null when not a finite number. -#}
{% macro parse_amount(expr) -%}
    {#- No-break spaces (U+00A0, U+202F) group thousands in French and Swiss number formatting. -#}
    {{ crm.finite_or_null(crm.plain_or_stripped_number(expr, '[¥￥$€£,\\s  ]|RMB|CNY|USD|EUR|GBP|元')) }}
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


{#- The currency an amount's own text names (symbol or code), null when it names none. -#}
{% macro currency_from_amount_text(expr) -%}
    {#- A bare $ or ¥ is the default currency when that is a dollar or a yen / yuan: an Australian shop's $ is AUD. -#}
    {%- set default = var("default_currency") | upper -%}
    {%- set dollar = default if default in ['USD', 'AUD', 'CAD', 'NZD', 'HKD', 'SGD', 'TWD', 'MXN'] else 'USD' -%}
    {%- set yen = default if default in ['CNY', 'JPY'] else 'CNY' -%}
    case
        when upper({{ expr }}) like '%USD%' then 'USD'
        when {{ expr }} like '%$%' then '{{ dollar }}'
        when {{ expr }} like '%元%' or upper({{ expr }}) like '%RMB%' or upper({{ expr }}) like '%CNY%' then 'CNY'
        when {{ expr }} like '%¥%' or {{ expr }} like '%￥%' then '{{ yen }}'
        when {{ expr }} like '%€%' or upper({{ expr }}) like '%EUR%' then 'EUR'
        when {{ expr }} like '%£%' or upper({{ expr }}) like '%GBP%' then 'GBP'
    end
{%- endmacro %}


{#- Currency code for a row: the currency column, else the amount's symbol, else the configured default. -#}
{% macro resolve_currency(currency_expr, amount_expr) -%}
    upper(coalesce(nullif(trim({{ currency_expr }}), ''), {{ crm.currency_from_amount_text(amount_expr) }}, '{{ var("default_currency") }}'))
{%- endmacro %}


{#- Whole number; null when the text is not one. -#}
{% macro parse_integer(expr) -%}
    {{ crm.try_cast(crm.plain_or_stripped_number(expr, '[,\\s]'), 'bigint') }}
{%- endmacro %}


{#- Lower-cased, trimmed e-mail; null unless it looks like local@domain.tld. -#}
{% macro normalise_email(expr) -%}
    case
        when {{ crm.matches_pattern('lower(trim(' ~ expr ~ '))', '[^@\\s]+@[^@\\s]+\\.[^@\\s]+') }}
        then lower(trim({{ expr }}))
    end
{%- endmacro %}


{#- Digits only, without the +86 / 0086 prefix of a Chinese mobile number, so that '+86 138 0013 8000',
    '138-0013-8000' and '0086 13800138000' compare equal. Null unless 7-15 digits remain. -#}
{% macro normalise_phone(expr) -%}
    {%- set digits = crm.strip_pattern(expr, '[^0-9]') -%}
    {%- set national = "case when length(" ~ digits ~ ") = 15 and " ~ digits ~ " like '00861%' then substr(" ~ digits ~ ", 5)"
        ~ " when length(" ~ digits ~ ") = 13 and " ~ digits ~ " like '861%' then substr(" ~ digits ~ ", 3)"
        ~ " else " ~ digits ~ " end" -%}
    case when length({{ national }}) between 7 and 15 then {{ national }} end
{%- endmacro %}


{#- Name folded for matching: lower case, inner white space removed (Chinese names are often typed with or
    without a space between family and given name). -#}
{% macro normalise_name(expr) -%}
    nullif(lower({{ crm.strip_pattern(expr, '\\s') }}), '')
{%- endmacro %}


{% macro normalise_gender(expr) -%}
    case
        when lower(trim({{ expr }})) in ('f', 'female', 'woman', 'w', '女', '女性') then 'female'
        when lower(trim({{ expr }})) in ('m', 'male', 'man', '男', '男性') then 'male'
        else 'unknown'
    end
{%- endmacro %}


{#- Order status folded to paid / cancelled / refunded; null (quarantined as unknown) for anything else. An empty
    status is paid. Marketplace states of an order being fulfilled (approved, invoiced, processing) are paid. -#}
{% macro order_status(expr) -%}
    case
        when {{ expr }} is null then 'paid'
        when {{ crm.clean_code(expr) }} in ('paid', 'completed', 'complete', 'success', 'succeeded', 'approved',
            'invoiced', 'processing', 'shipped', 'delivered', 'closed', 'fulfilled', '已支付', '已完成', '完成',
            '已发货', '已收货') then 'paid'
        when {{ crm.clean_code(expr) }} in ('cancelled', 'canceled', 'void', 'voided', 'unavailable', '已取消',
            '取消') then 'cancelled'
        when {{ crm.clean_code(expr) }} in ('refunded', 'refund', 'returned', 'return', '已退款', '退款', '已退货')
            then 'refunded'
    end
{%- endmacro %}


{% macro parse_boolean(expr) -%}
    case
        when lower(trim({{ expr }})) in ('true', 't', 'yes', 'y', '1', '是', '同意') then true
        when lower(trim({{ expr }})) in ('false', 'f', 'no', 'n', '0', '否', '不同意') then false
    end
{%- endmacro %}


{#- Trimmed text, empty as null, title-cased words kept as delivered. -#}
{% macro clean_text(expr) -%}
    nullif(trim({{ expr }}), '')
{%- endmacro %}


{#- An id as text, trimmed; a numeric id written as a float by a spreadsheet or pandas ('17850.0') is the integer id
    ('17850'), so that it matches the same id written plainly in another file. -#}
{% macro clean_id(expr) -%}
    case
        when {{ expr }} like '%.%0' then {{ crm.replace_pattern('trim(' ~ expr ~ ')', '^([0-9]+)\\.0+$', '\\1') }}
        else {{ crm.clean_text(expr) }}
    end
{%- endmacro %}


{#- Lower-case code with spaces and dashes as underscores: 'Web Visit' -> 'web_visit'. -#}
{% macro clean_code(expr) -%}
    nullif(lower({{ crm.replace_pattern('trim(' ~ expr ~ ')', '[\\s\\-]+', '_') }}), '')
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
