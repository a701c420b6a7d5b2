with source as (

    select * from {{ source('crm', 'surveys') }}

),

renamed as (

    select
        coalesce(
            {{ crm.clean_text('survey_id') }},
            {{ crm.derived_id('s', ['customer_id', 'answered_at']) }}
        ) as survey_id,
        {{ crm.clean_text('customer_id') }} as customer_id,
        {{ crm.parse_timestamp('answered_at') }} as answered_at,
        {{ crm.parse_integer('nps') }} as nps,
        answered_at as answered_at_text,
        _source_file,
        _drop_date,
        _row_number,
        _loaded_at

    from source

),

validated as (

    select
        *,
        case
            when customer_id is null then 'missing customer_id'
            when answered_at_text is null then 'missing answered_at'
            when answered_at is null then 'unparseable answered_at'
            when cast(answered_at as date) > _drop_date then 'answered_at after its export drop'
            when nps is null or nps not between 0 and 10 then 'nps not 0-10'
        end as _quarantine_reason
    from renamed

),

hashed as (

    select *, {{ crm.content_hash() }} as _content_hash from validated

)

select
    *,
    {{ crm.version_rank(['survey_id'], updated_at='_drop_date') }} as _version_rank,
    {{ crm.conflicting_version(['survey_id'], updated_at='_drop_date', version='drop') }} as _conflict_reason
from hashed
