{{ config(materialized='table') }}
{#-
  The first day t <= D on which a loan, on book at the end of t, had dpd > 30 as known on t
  (business_rules.md sections 1-2), for the vintage's ever_dpd30_rate. Derived exactly from
  the ledger, without evaluating every day:

  - a ledger row starts to count on its effective date e = max(value_date, date(booked_at)); a
    reversal on max of its own two dates and its repayment's two, so paid(t) is a step
    function that changes only on effective dates;
  - dpd(t) > 30 iff some installment k with due_k + 31 <= t is unpaid on t, i.e.
    paid(t) < cum_due_k - tolerance;
  - for installment k the first such day is a_k = due_k + 31 when paid(a_k) is below the
    threshold, else the first effective date after a_k at which paid drops below it;
  - the loan's first day is the minimum over k, kept only when the loan was still on book
    that day (not yet settled or written off as known that day; leaving the book is final).

  One row per loan that ever reached dpd > 30 by D (first_dpd30_on <= D).

  Carried forward (as int_loan_state_on_date): when the table was built for a date P with the
  same tolerance, only loans whose answer can differ are recomputed: a ledger row counting from
  a day in (P, D] or counting by D and known since P's build, an installment whose first
  possible dpd>30 day due_date + 31 falls in (P, D], a schedule or loan row loaded since, a
  status change in (P, D]. For every other loan the first day is a fixed function of unchanged
  inputs, so P's row stands (kept only when it is <= D, which also serves a re-run of an
  earlier date).
-#}
{%- set D = business_date() -%}
{%- set carry = var('carry_state_forward', true) and can_carry_forward() %}

with watermarks as materialized (
    select
        {{ D }} as computed_for_date,
        {{ load_watermarks() }}
),
{%- if carry %}

previous as materialized (
    select p.*
    from {{ this }} as p
    where p.paid_tolerance = (select paid_tolerance from watermarks)
),

since as materialized (
    select max(computed_for_date) as previous_date, max(ledger_known_until) as ledger_known_until,
           max(schedule_loaded_until) as schedule_loaded_until, max(loans_loaded_until) as loans_loaded_until
    from previous
),

changed_loans as materialized (
    select l.loan_id
    from {{ ref('stg_core_banking__loans') }} as l
    cross join since as s
    where s.previous_date is null
       or l.loaded_at > s.loans_loaded_until
       or (l.status_changed_on > s.previous_date and l.status_changed_on <= {{ D }})
    union
    select e.loan_id
    from {{ ref('int_ledger_counted') }} as e
    cross join since as s
    where e.counts_from <= {{ D }}
      and (e.counts_from > s.previous_date or e.known_at > s.ledger_known_until)
    union
    select i.loan_id
    from {{ ref('int_installments_cumulated') }} as i
    cross join since as s
    where (i.due_date + 31 > s.previous_date and i.due_date + 31 <= {{ D }})
       or i.loaded_at > s.schedule_loaded_until
),
{%- endif %}

events as (
    -- each counted ledger row from the day it is known (int_ledger_counted: a reversal on the
    -- later of its own dates and its repayment's; one of a repayment not in the ledger never)
    select loan_id, counts_from as effective_on, paid_delta as signed_amount
    from {{ ref('int_ledger_counted') }}
    where txn_type in ('repayment', 'waiver', 'reversal')
    {%- if carry %}
      and loan_id in (select loan_id from changed_loans)
    {%- endif %}
),

-- paid(t) for t in [effective_on, next effective_on): cumulative after each effective date
paid_steps as (
    select loan_id, effective_on,
           sum(sum(signed_amount)) over (partition by loan_id order by effective_on
                                         rows between unbounded preceding and current row) as paid
    from events
    where effective_on <= {{ D }}
    group by loan_id, effective_on
),

installments as (
    select i.loan_id, i.installment_order, cast(i.due_date + 31 as date) as first_late_day,
           i.cum_due - {{ policy('paid_tolerance') }} as paid_threshold
    from {{ ref('int_installments_cumulated') }} as i
    where i.due_date + 31 <= {{ D }}
    {%- if carry %}
      and i.loan_id in (select loan_id from changed_loans)
    {%- endif %}
),

-- paid on the installment's first possible dpd>30 day
paid_at_start as (
    select i.loan_id, i.installment_order, i.first_late_day, i.paid_threshold,
           coalesce(p.paid, 0) as paid_on_first_late_day
    from installments as i
    asof left join paid_steps as p
        on p.loan_id = i.loan_id and p.effective_on <= i.first_late_day
),

first_per_installment as (
    select s.loan_id, s.installment_order,
           case when s.paid_on_first_late_day < s.paid_threshold then s.first_late_day
                else (select min(p.effective_on) from paid_steps as p
                      where p.loan_id = s.loan_id and p.effective_on > s.first_late_day
                        and p.paid < s.paid_threshold) end as first_dpd30_on
    from paid_at_start as s
),

first_per_loan as (
    select loan_id, min(first_dpd30_on) as first_dpd30_on
    from first_per_installment
    group by loan_id
),

first_dpd30 as (
    select f.loan_id, f.first_dpd30_on
    from first_per_loan as f
    inner join {{ ref('stg_core_banking__loans') }} as l on l.loan_id = f.loan_id
    where f.first_dpd30_on <= {{ D }}
      and f.first_dpd30_on >= l.disbursed_on
      -- on book that day (section 1): not settled / written off by status_changed_on, and no write_off
      -- row known by then (leaving the book is final, so the earliest day decides)
      and not (l.status in ('settled', 'written_off') and l.status_changed_on <= f.first_dpd30_on)
      and not exists (
          select 1 from {{ ref('int_ledger_counted') }} as w
          where w.loan_id = f.loan_id and w.txn_type = 'write_off' and w.counts_from <= f.first_dpd30_on)
)

select r.loan_id, r.first_dpd30_on, w.*
from (
    select loan_id, first_dpd30_on from first_dpd30
    {%- if carry %}
    union all
    select p.loan_id, p.first_dpd30_on
    from previous as p
    where p.first_dpd30_on <= {{ D }}
      and p.loan_id not in (select loan_id from changed_loans)
    {%- endif %}
) as r
cross join watermarks as w
