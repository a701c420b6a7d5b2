with reps as (

    select * from {{ ref('stg_crm__sales_reps') }}

)

select
    cast(rep_id as varchar) as rep_id,
    cast(rep_name as varchar) as rep_name,
    cast(team as varchar) as team,
    cast(region as varchar) as region
from reps
