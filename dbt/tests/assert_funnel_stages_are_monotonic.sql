-- An opportunity can only have entered a later funnel stage after (or when) it entered an earlier one it went through.
select opportunity_id
from {{ ref('fct_opportunities') }}
where contacted_at < new_at or qualified_at < contacted_at or proposal_at < qualified_at
   or negotiation_at < proposal_at
