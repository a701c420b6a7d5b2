select
    cast(opportunity_id as {{ crm.text() }}) as opportunity_id,
    cast(stage as {{ crm.text() }}) as stage,
    cast(stage_order as integer) as stage_order,
    cast(entered_at as timestamp) as entered_at,
    cast(exited_at as timestamp) as exited_at,
    cast(days_in_stage as double) as days_in_stage
from {{ ref('int_opportunity_stages_historized') }}
