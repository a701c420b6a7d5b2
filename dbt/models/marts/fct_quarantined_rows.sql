-- Every row that did not land because it is unreadable, invalid or an orphan, with the reason: rows the CSV
-- reader rejected at ingestion and rows the models rejected. Fix the source and re-deliver to recover them.
-- The rejected lines themselves may hold personal data: they stay in the working database (raw._quarantine,
-- raw.<entity>), found by source_file and row_number; this BI-facing mart carries only where and why.
with rejected_at_ingest as (

    select entity, source_file, drop_date, row_number, 'ingest' as stage, reason, detail
    from {{ source('crm', '_quarantine') }}

),

rejected_by_models as (

    select entity, _source_file, _drop_date, _row_number, 'model', reason, detail
    from {{ ref('audit_raw_rows_classified') }}
    where outcome = 'quarantined'

),

quarantined as (

    select * from rejected_at_ingest
    union all
    select * from rejected_by_models

)

select
    cast(entity as {{ crm.text() }}) as entity,
    cast(source_file as {{ crm.text() }}) as source_file,
    cast(drop_date as date) as drop_date,
    cast(row_number as bigint) as row_number,
    cast(stage as {{ crm.text() }}) as stage,
    cast(reason as {{ crm.text() }}) as reason,
    cast(detail as {{ crm.text() }}) as detail
from quarantined
