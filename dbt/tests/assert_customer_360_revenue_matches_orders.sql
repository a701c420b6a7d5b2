{{ config(meta={'dagster': {'ref': {'name': 'customer_360'}}}) }}
-- Revenue in customer_360 must add up to the paid revenue in fct_orders (to the cent).
select orders_revenue, customer_revenue
from (select coalesce(sum(net_amount), 0) as orders_revenue from {{ ref('fct_orders') }}) as o
cross join (select coalesce(sum(revenue), 0) as customer_revenue from {{ ref('customer_360') }}) as c
where abs(orders_revenue - customer_revenue) > 0.01
