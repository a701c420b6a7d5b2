-- Per export file: rows read = landed + quarantined + merged + superseded + deferred + unattributed.
-- `unaccounted_rows` must be 0.
with files as (

    select entity, source_file, drop_date, rows_read, rows_quarantined as rows_rejected_at_ingest
    from {{ source('crm', '_ingest_log') }}

),

outcomes as (

    select
        entity,
        _source_file as source_file,
        count(case when outcome = 'landed' then 1 end) as rows_landed,
        count(case when outcome = 'quarantined' then 1 end) as rows_quarantined_by_models,
        count(case when outcome = 'merged' then 1 end) as rows_merged,
        count(case when outcome = 'superseded' then 1 end) as rows_superseded,
        count(case when outcome = 'deferred' then 1 end) as rows_deferred,
        count(case when outcome = 'unattributed' then 1 end) as rows_unattributed
    from {{ ref('audit_raw_rows_classified') }}
    group by entity, _source_file

)

select
    cast(files.entity as {{ crm.text() }}) as entity,
    cast(files.source_file as {{ crm.text() }}) as source_file,
    cast(files.drop_date as date) as drop_date,
    cast(files.rows_read as bigint) as rows_read,
    cast(coalesce(outcomes.rows_landed, 0) as bigint) as rows_landed,
    cast(files.rows_rejected_at_ingest + coalesce(outcomes.rows_quarantined_by_models, 0) as bigint) as rows_quarantined,
    cast(coalesce(outcomes.rows_merged, 0) as bigint) as rows_merged,
    cast(coalesce(outcomes.rows_superseded, 0) as bigint) as rows_superseded,
    cast(coalesce(outcomes.rows_deferred, 0) as bigint) as rows_deferred,
    cast(coalesce(outcomes.rows_unattributed, 0) as bigint) as rows_unattributed,
    cast(files.rows_read
        - files.rows_rejected_at_ingest
        - coalesce(outcomes.rows_landed + outcomes.rows_quarantined_by_models + outcomes.rows_merged
                   + outcomes.rows_superseded + outcomes.rows_deferred + outcomes.rows_unattributed, 0) as bigint)
        as unaccounted_rows
from files
left join outcomes on files.entity = outcomes.entity and files.source_file = outcomes.source_file
