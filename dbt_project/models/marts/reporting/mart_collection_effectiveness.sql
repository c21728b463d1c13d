{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='month',
    on_schema_change='append_new_columns',
    contract={'enforced': true},
) }}
{#-
  Collection effectiveness (business_rules.md section 4), per calendar month, channel, agent
  (NULL agent = 'system') and strategy.
  - Contact rate, by month of action_at: call and field_visit actions known on D with outcome
    contacted / promise_to_pay / refused / dispute, over all call and field_visit actions.
  - Promise-kept rate, by month of promised_date: a promise_to_pay action is judged once, on
    promised_date + 1 (so only when promised_date + 1 <= D), on the ledger as known on that day:
    kept when repayments minus reversals with date(action_at) <= value_date <= promised_date
    reach promised_amount - ptp_tolerance. Overlapping promises are judged independently.
  On D only two months can change: D's month (actions of D) and the month of D - 1 (promises
  judged on D); an incremental run rebuilds those two, a full build every month up to D.
-#}
{%- set D = business_date() -%}

with actions as (
    select a.action_id, a.loan_id, a.action_on, a.channel, coalesce(a.agent_id, 'system') as agent_id,
           a.outcome, a.promised_amount, a.promised_date
    from {{ ref('stg_core_banking__collection_actions') }} as a
    where a.action_on <= {{ D }}
),

-- Strategy of the loan when the action was taken. HOOK: once the collection list history
-- exists (marts.collection_priority_list_history: as_of_date, loan_id, strategy), join it here
-- on loan_id and the list's as_of_date that drove the action, e.g.
--   left join ref('collection_priority_list_history') as h
--     on h.loan_id = a.loan_id and h.as_of_date = a.action_on - 1
-- with coalesce(h.strategy, 'none'). Until then every action is 'none'.
with_strategy as (
    select a.*, 'none' as strategy
    from actions as a
),

contact_rows as (
    select cast(date_trunc('month', action_on) as date) as month, channel, agent_id, strategy,
           count(*) as actions,
           count(*) filter (where outcome in ('contacted', 'promise_to_pay', 'refused', 'dispute')) as contacts
    from with_strategy
    where channel in ('call', 'field_visit')
    group by all
),

promises as (
    select action_id, loan_id, action_on, channel, agent_id, strategy, promised_amount, promised_date,
           cast(promised_date + 1 as date) as judged_on
    from with_strategy
    where outcome = 'promise_to_pay'
      and promised_date is not null
      and promised_date + 1 <= {{ D }}
),

-- repayments and reversals in each promise's window, as known on promised_date + 1
promise_money as (
    select p.action_id,
           sum(case when t.txn_type = 'repayment' then t.amount else -t.amount end) as net_paid
    from promises as p
    inner join {{ ref('stg_core_banking__loan_transactions') }} as t
        on t.loan_id = p.loan_id
       and t.value_date between p.action_on and p.promised_date
       and t.booked_on <= p.judged_on
    left join {{ ref('stg_core_banking__loan_transactions') }} as u on u.txn_id = t.reverses_txn_id
    where t.txn_type = 'repayment'
       or (t.txn_type = 'reversal' and u.value_date <= p.judged_on and u.booked_on <= p.judged_on)
    group by p.action_id
),

promise_rows as (
    select cast(date_trunc('month', p.promised_date) as date) as month, p.channel, p.agent_id, p.strategy,
           count(*) as promises_judged,
           count(*) filter (where coalesce(m.net_paid, 0) >= p.promised_amount - {{ policy('ptp_tolerance') }})
               as promises_kept
    from promises as p
    left join promise_money as m on m.action_id = p.action_id
    group by all
),

combined as (
    select coalesce(c.month, p.month) as month,
           coalesce(c.channel, p.channel) as channel,
           coalesce(c.agent_id, p.agent_id) as agent_id,
           coalesce(c.strategy, p.strategy) as strategy,
           coalesce(c.actions, 0) as actions,
           coalesce(c.contacts, 0) as contacts,
           coalesce(p.promises_judged, 0) as promises_judged,
           coalesce(p.promises_kept, 0) as promises_kept
    from contact_rows as c
    full outer join promise_rows as p
        on p.month = c.month and p.channel = c.channel and p.agent_id = c.agent_id and p.strategy = c.strategy
)

select
    month,
    channel,
    agent_id,
    strategy,
    cast(actions as bigint) as actions,
    cast(contacts as bigint) as contacts,
    cast(contacts as double) / nullif(cast(actions as double), 0) as contact_rate,
    cast(promises_judged as bigint) as promises_judged,
    cast(promises_kept as bigint) as promises_kept,
    cast(promises_kept as double) / nullif(cast(promises_judged as double), 0) as ptp_kept_rate
from combined
{% if is_incremental() -%}
where month >= cast(date_trunc('month', {{ D }} - 1) as date)
{%- endif %}
