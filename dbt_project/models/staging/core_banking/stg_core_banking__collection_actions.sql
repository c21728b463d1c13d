select
    action_id,
    loan_id,
    action_at,
    cast(action_at as date) as action_on,
    channel,
    agent_id,
    outcome,
    promised_amount,
    promised_date,
    _loaded_at as loaded_at
from {{ source('core_banking', 'collection_actions') }}
