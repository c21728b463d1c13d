select
    as_of_date,
    loan_id,
    priority_rank,
    risk_tier,
    recommended_action,
    strategy,
    capacity_limited
from {{ source('collections', 'collection_priority_list_history') }}
