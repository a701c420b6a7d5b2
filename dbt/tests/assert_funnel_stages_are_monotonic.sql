{{ config(meta={'dagster': {'ref': {'name': 'fct_opportunities'}}}) }}
-- An opportunity cannot enter a later funnel stage on an earlier day than a stage before it (compared by day:
-- exports often give a stage change as a date only).
select opportunity_id
from {{ ref('fct_opportunities') }}
where cast(contacted_at as date) < cast(new_at as date)
   or cast(qualified_at as date) < cast(contacted_at as date)
   or cast(proposal_at as date) < cast(qualified_at as date)
   or cast(negotiation_at as date) < cast(proposal_at as date)
