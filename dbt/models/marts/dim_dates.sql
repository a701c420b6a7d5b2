-- Calendar from the first order to a year past the as-of date (forecasts are joined onto future days).
with bounds as (

    select
        coalesce(min(order_date), {{ crm.as_of_date() }}) as first_day,
        {{ dbt.dateadd('day', 365, crm.as_of_date()) }} as last_day
    from {{ ref('int_orders_deduplicated') }}

),

days as (

    {{ crm.date_series('(select first_day from bounds)', '(select last_day from bounds)') }}

)

select
    cast(date_day as date) as date_day,
    cast(extract(year from date_day) as integer) as year,
    cast(extract(quarter from date_day) as integer) as quarter,
    cast(extract(month from date_day) as integer) as month,
    cast({{ dbt.date_trunc('month', 'date_day') }} as date) as month_start,
    cast(extract(week from date_day) as integer) as iso_week,
    cast({{ crm.iso_day_of_week('date_day') }} as integer) as iso_day_of_week,
    cast({{ crm.iso_day_of_week('date_day') }} in (6, 7) as boolean) as is_weekend,
    cast(date_day > {{ crm.as_of_date() }} as boolean) as is_future
from days
