with reps as (

    select * from {{ ref('stg_crm__sales_reps') }}

)

select
    cast(rep_id as {{ crm.text() }}) as rep_id,
    cast(rep_name as {{ crm.text() }}) as rep_name,
    cast(team as {{ crm.text() }}) as team,
    cast(region as {{ crm.text() }}) as region
from reps
