{#-
  Stage history of every lead / opportunity as of the as-of date: one row per stage it entered, from all the
  versions the exports delivered (each version is a stage change). A stage delivered twice keeps its first entry.
-#}
with versions as (

    select * from {{ ref('base_crm__opportunities') }}
    where _quarantine_reason is null

),

stage_entries as (

    select
        opportunity_id,
        stage,
        min(coalesce(stage_changed_at, created_at)) as entered_at
    from versions
    where cast(coalesce(stage_changed_at, created_at) as date) <= {{ crm.as_of_date() }}
    group by opportunity_id, stage

),

ordered as (

    select
        opportunity_id,
        stage,
        case stage
            when 'new' then 1 when 'contacted' then 2 when 'qualified' then 3 when 'proposal' then 4
            when 'negotiation' then 5 when 'won' then 6 when 'lost' then 7
        end as stage_order,
        entered_at,
        lead(entered_at) over (partition by opportunity_id order by entered_at, stage) as exited_at
    from stage_entries

)

select
    opportunity_id,
    stage,
    stage_order,
    entered_at,
    exited_at,
    {{ dbt.datediff('entered_at', 'exited_at', 'hour') }} / 24.0 as days_in_stage
from ordered
