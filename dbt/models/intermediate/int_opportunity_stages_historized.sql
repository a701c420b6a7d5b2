{#-
  Stage history of every lead / opportunity as of the as-of date: one row per stage it entered, from all the
  versions the exports delivered (each version is a stage change). A stage delivered twice keeps its first entry.
  A version without a date of its own (stage_changed_at, or a closed deal's closed_at) entered its stage when the
  lead was created, as far as anyone can tell: is_dated says which entries know better. A lead created by the as-of
  date whose first delivered stage came later (a deal exported once, as it stood after the as-of date) was new then.
-#}
with versions as (

    select * from {{ ref('base_crm__opportunities') }}
    where _quarantine_reason is null

),

stage_entries as (

    select
        opportunity_id,
        stage,
        -- A version that says when it entered the stage wins over one that does not (dated at creation).
        coalesce(min(stage_entered_at), min(created_at)) as entered_at,
        min(stage_entered_at) is not null as is_dated
    from versions
    where cast(coalesce(stage_entered_at, created_at) as date) <= {{ crm.as_of_date() }}
    group by opportunity_id, stage

),

created_before_its_stages as (

    select
        opportunity_id,
        'new' as stage,
        min(created_at) as entered_at,
        false as is_dated
    from versions
    where opportunity_id not in (select opportunity_id from stage_entries)
    group by opportunity_id
    having cast(min(created_at) as date) <= {{ crm.as_of_date() }}

),

entries as (

    select * from stage_entries
    union all
    select * from created_before_its_stages

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
        is_dated,
        lead(entered_at) over (partition by opportunity_id order by entered_at, stage) as exited_at
    from entries

)

select
    opportunity_id,
    stage,
    stage_order,
    entered_at,
    is_dated,
    exited_at,
    {{ dbt.datediff('entered_at', 'exited_at', 'hour') }} / 24.0 as days_in_stage
from ordered
