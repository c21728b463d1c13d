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
  - Strategy of an action: the list of D is worked on D + 1, so an action on day X takes the
    strategy its loan had on the list of X - 1; 'none' when the loan was not on that list
    (no list yet, or an action the list did not ask for).
  - Contact rate, by month of action_at: call and field_visit actions known on D with outcome
    contacted / promise_to_pay / refused / dispute, over all call and field_visit actions.
  - Promise-kept rate, by month of promised_date: a promise_to_pay action is judged once, on
    promised_date + 1 (so only when promised_date + 1 <= D), on the ledger as known on that day:
    kept when repayments minus reversals with date(action_at) <= value_date <= promised_date
    reach promised_amount - ptp_tolerance. Overlapping promises are judged independently.
  - Outcomes of the loans handled, by month of action (the champion/challenger comparison):
    loans with any action in the cell, their state at the previous month-end p against their
    state at the month's end m, both as known then (the cure, roll and recovery definitions of
    section 4 on those loans). NULL until D reaches the month's last day.
  On D only two months can change: D's month (actions of D, outcomes on its last day) and the
  month of D - 1 (promises judged on D); an incremental run rebuilds those two.
-#}
{%- set D = business_date() -%}
{%- set first_month = "cast(date_trunc('month', " ~ D ~ " - 1) as date)" -%}

with actions as (
    select a.action_id, a.loan_id, a.action_on, a.channel, coalesce(a.agent_id, 'system') as agent_id,
           a.outcome, a.promised_amount, a.promised_date
    from {{ ref('stg_core_banking__collection_actions') }} as a
    where a.action_on <= {{ D }}
    {%- if is_incremental() %}
      and (a.action_on >= {{ first_month }} or a.promised_date >= {{ first_month }})
    {%- endif %}
),

-- only the lists that drove these actions: the history grows by a list a day
lists as (
    select as_of_date, loan_id, strategy
    from {{ ref('stg_collections__priority_lists') }}
    where as_of_date >= (select min(action_on) - 1 from actions)
),

with_strategy as (
    select a.*, coalesce(h.strategy, 'none') as strategy
    from actions as a
    left join lists as h
        on h.loan_id = a.loan_id
       and h.as_of_date = a.action_on - 1
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
    select action_id, loan_id, channel, agent_id, strategy, promised_amount, promised_date,
           action_on as value_from, promised_date as value_to, cast(promised_date + 1 as date) as known_on
    from with_strategy
    where outcome = 'promise_to_pay'
      and promised_date is not null
      and promised_date + 1 <= {{ D }}
),

-- repayments and reversals in each promise's window, as known on promised_date + 1
promise_money as (
{{ net_repayments('promises', ['action_id']) }}
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

handled as (
    select distinct cast(date_trunc('month', action_on) as date) as month, channel, agent_id, strategy, loan_id
    from with_strategy
),

-- loans on book at the month-end before the month, for months whose last day is <= D
starts as (
    select h.month, s.loan_id, s.bucket, s.bucket_order, s.dpd, s.overdue_amount,
           h.month as value_from, last_day(h.month) as value_to, last_day(h.month) as known_on
    from (select distinct month, loan_id from handled) as h
    inner join {{ ref('int_month_end_loan_states') }} as s
        on s.loan_id = h.loan_id
       and s.month_end = h.month - 1
       and s.is_on_book
    where last_day(h.month) <= {{ D }}
    {%- if is_incremental() %}
      and s.month_end >= {{ first_month }} - 1  -- a literal bound: the scan reads two month-ends, not all
    {%- endif %}
),

month_money as (
{{ net_repayments('starts', ['month', 'loan_id']) }}
),

outcomes as (
    select s.month, s.loan_id,
           s.bucket = 'M1' as in_m1_at_start,
           s.bucket = 'M1' and (e.bucket = 'M0' and e.is_on_book or e.left_book_as = 'settled') as cured,
           (e.is_on_book and e.bucket_order > s.bucket_order) or e.left_book_as = 'written_off' as rolled_forward,
           case when s.dpd > 0 then s.overdue_amount else 0 end as overdue_at_start,
           case when s.dpd > 0 then least(greatest(coalesce(m.net_paid, 0), 0), s.overdue_amount) else 0 end
               as collected
    from starts as s
    inner join {{ ref('int_month_end_loan_states') }} as e
        on e.loan_id = s.loan_id
       and e.month_end = s.value_to
    {%- if is_incremental() %}
       and e.month_end >= {{ first_month }}
    {%- endif %}
    left join month_money as m on m.month = s.month and m.loan_id = s.loan_id
),

outcome_rows as (
    select h.month, h.channel, h.agent_id, h.strategy,
           count(*) as loans_handled,
           count(o.loan_id) as loans_on_book_at_start,
           count(*) filter (where o.rolled_forward) as loans_rolled_forward,
           count(*) filter (where o.in_m1_at_start) as loans_m1_at_start,
           count(*) filter (where o.cured) as loans_cured,
           coalesce(sum(o.overdue_at_start), 0) as overdue_at_start,
           coalesce(sum(o.collected), 0) as collected
    from handled as h
    left join outcomes as o on o.month = h.month and o.loan_id = h.loan_id
    group by all
),

cells as (
    select month, channel, agent_id, strategy from contact_rows
    union
    select month, channel, agent_id, strategy from promise_rows
    union
    select month, channel, agent_id, strategy from outcome_rows
),

combined as (
    select k.month, k.channel, k.agent_id, k.strategy,
           last_day(k.month) <= {{ D }} as month_closed,
           coalesce(c.actions, 0) as actions,
           coalesce(c.contacts, 0) as contacts,
           coalesce(p.promises_judged, 0) as promises_judged,
           coalesce(p.promises_kept, 0) as promises_kept,
           coalesce(o.loans_handled, 0) as loans_handled,
           coalesce(o.loans_on_book_at_start, 0) as loans_on_book_at_start,
           coalesce(o.loans_rolled_forward, 0) as loans_rolled_forward,
           coalesce(o.loans_m1_at_start, 0) as loans_m1_at_start,
           coalesce(o.loans_cured, 0) as loans_cured,
           coalesce(o.overdue_at_start, 0) as overdue_at_start,
           coalesce(o.collected, 0) as collected
    from cells as k
    left join contact_rows as c using (month, channel, agent_id, strategy)
    left join promise_rows as p using (month, channel, agent_id, strategy)
    left join outcome_rows as o using (month, channel, agent_id, strategy)
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
    cast(promises_kept as double) / nullif(cast(promises_judged as double), 0) as ptp_kept_rate,
    cast(loans_handled as bigint) as loans_handled,
    cast(case when month_closed then loans_on_book_at_start end as bigint) as loans_on_book_at_start,
    cast(case when month_closed then loans_rolled_forward end as bigint) as loans_rolled_forward,
    case when month_closed then cast(loans_rolled_forward as double) / nullif(cast(loans_on_book_at_start as double), 0)
    end as roll_forward_rate,
    cast(case when month_closed then loans_m1_at_start end as bigint) as loans_m1_at_start,
    cast(case when month_closed then loans_cured end as bigint) as loans_cured,
    case when month_closed then cast(loans_cured as double) / nullif(cast(loans_m1_at_start as double), 0)
    end as cure_rate,
    cast(case when month_closed then overdue_at_start end as decimal(18, 2)) as overdue_at_start,
    cast(case when month_closed then collected end as decimal(18, 2)) as collected,
    case when month_closed then cast(collected as double) / nullif(cast(overdue_at_start as double), 0)
    end as recovery_rate
from combined
{% if is_incremental() -%}
where month >= {{ first_month }}
{%- endif %}
