{#- Cleaning: identifiers, codes, names, e-mails, phones, genders and order statuses folded into comparable form. -#}

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
    status is paid. Marketplace states of an order being fulfilled (approved, invoiced, processing) are paid, and so
    is a partially refunded order (Shopify's partially_refunded): its refunded_amount comes off its revenue
    (fct_orders.net_amount). mapping.yml's status_values rewrites other values at ingestion. "closed" is not known:
    Magento closes an order it refunded in full, other systems one that completed. -#}
{% macro order_status(expr) -%}
    case
        when {{ expr }} is null then 'paid'
        when {{ crm.clean_code(expr) }} in ('paid', 'completed', 'complete', 'success', 'succeeded', 'approved',
            'invoiced', 'processing', 'shipped', 'delivered', 'fulfilled', '已支付', '已完成', '完成',
            '已发货', '已收货', '交易成功', '交易完成', '买家已付款', '等待卖家发货', '卖家已发货',
            '卖家已发货，等待买家确认', '卖家已发货,等待买家确认', 'partially_refunded', '部分退款') then 'paid'
        {#- Taobao and Tmall: a trade closed before it completed was cancelled or fully refunded. -#}
        when {{ crm.clean_code(expr) }} in ('cancelled', 'canceled', 'void', 'voided', 'unavailable', '已取消',
            '取消', '交易关闭', '交易已关闭') then 'cancelled'
        when {{ crm.clean_code(expr) }} in ('refunded', 'refund', 'returned', 'return', '已退款', '退款', '已退货',
            '退款成功') then 'refunded'
    end
{%- endmacro %}


{#- Ticket status folded to open / pending / resolved / closed (helpdesks' new, on hold, solved ... among them); null
    (quarantined as unknown) for anything else, and for an empty status (fct_tickets then reads it from resolved_at).
    mapping.yml's status_values rewrites other values at ingestion. -#}
{% macro ticket_status(expr) -%}
    case
        when {{ crm.clean_code(expr) }} in ('open', 'new', 'reopened', '待处理', '新建') then 'open'
        when {{ crm.clean_code(expr) }} in ('pending', 'in_progress', 'waiting', 'hold', 'on_hold', '处理中')
            then 'pending'
        when {{ crm.clean_code(expr) }} in ('resolved', 'solved', 'done', '已解决') then 'resolved'
        when {{ crm.clean_code(expr) }} in ('closed', '已关闭') then 'closed'
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


{#- The customer id shop systems write for a guest's order (WooCommerce's Customer User ID 0): no customer. Read as
    one customer, every guest would be a single customer with all their orders. -#}
{% macro guest_customer_id() -%}
    '0'
{%- endmacro %}


{#- Lower-case code with spaces and dashes as underscores: 'Web Visit' -> 'web_visit'. -#}
{% macro clean_code(expr) -%}
    nullif(lower({{ crm.replace_pattern('trim(' ~ expr ~ ')', '[\\s\\-]+', '_') }}), '')
{%- endmacro %}
