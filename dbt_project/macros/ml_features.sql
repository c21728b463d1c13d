{#-
  Risk-model features of every loan on book in `states` (rows of macro loan_state: one per
  as_of_date and loan), each from what is known at the end of its as_of_date only
  (business_rules.md section 1). The one implementation behind daily scoring
  (int_ml_features_on_date) and the training snapshots (int_ml_training_snapshots).
  Every event is filtered by its own "known on" rule:
    ledger    value_date <= date and booked_on <= date (a reversal only with its repayment);
    actions   date(action_at) <= date;
    gateway   settlement_date <= date and initiated_on <= date, latest appearance wins;
    promises  judged only once promised_date + 1 <= date, on the ledger as known on promised_date + 1.
  Customer attributes are as they are now (the source keeps no history of them).
-#}
{% macro ml_features(states) %}
with base as materialized (
    select as_of_date, loan_id, customer_id, product_id, channel, principal, disbursed_on, paid_amount,
           outstanding_principal, overdue_amount, dpd, missed_installments
    from {{ states }}
    where is_on_book
),

dates as materialized (
    select distinct as_of_date from base
),

-- repayments, waivers and counted reversals known on each date, signed (int_ledger_counted)
ledger as materialized (
    select d.as_of_date, e.loan_id, e.txn_type, e.value_date, e.paid_delta as signed_amount
    from {{ ref('int_ledger_counted') }} as e
    inner join dates as d on e.counts_from <= d.as_of_date
    where e.txn_type in ('repayment', 'waiver', 'reversal')
),

payments as (
    select
        as_of_date,
        loan_id,
        count(*) filter (where txn_type = 'repayment' and value_date > as_of_date - 30) as payments_30d,
        count(*) filter (where txn_type = 'repayment' and value_date > as_of_date - 90) as payments_90d,
        count(*) filter (where txn_type = 'repayment' and value_date > as_of_date - 180) as payments_180d,
        sum(signed_amount) filter (where txn_type <> 'waiver' and value_date > as_of_date - 30) as paid_30d,
        sum(signed_amount) filter (where txn_type <> 'waiver' and value_date > as_of_date - 90) as paid_90d,
        sum(signed_amount) filter (where txn_type <> 'waiver' and value_date > as_of_date - 180) as paid_180d,
        max(value_date) filter (where txn_type = 'repayment') as last_payment_on
    from ledger
    group by as_of_date, loan_id
),

installments as materialized (
    select b.as_of_date, b.loan_id, i.installment_order, i.due_date, i.due_amount, i.cum_due
    from base as b
    inner join {{ ref('int_installments_cumulated') }} as i on i.loan_id = b.loan_id
),

schedule as (
    select
        as_of_date,
        loan_id,
        count(*) filter (where due_date > as_of_date) as remaining_installments,
        min(due_date) filter (where due_date >= as_of_date) as next_due_on,
        sum(due_amount) filter (where due_date <= as_of_date and due_date > as_of_date - 30) as due_30d,
        sum(due_amount) filter (where due_date <= as_of_date and due_date > as_of_date - 90) as due_90d,
        sum(due_amount) filter (where due_date <= as_of_date and due_date > as_of_date - 180) as due_180d,
        sum(due_amount) filter (where due_date >= as_of_date and due_date < as_of_date + 30) as due_next_30d,
        max(cum_due) filter (where due_date < as_of_date + 30) as cum_due_next_30d
    from installments
    group by as_of_date, loan_id
),

-- when each installment due in the last 180 days was covered (oldest first), as known on the date:
-- the first value date whose end-of-day total paid reaches it (a range frame: all rows of a value
-- date count together, so the answer does not depend on the order of same-day rows)
running as (
    select as_of_date, loan_id, value_date,
           sum(signed_amount) over (partition by as_of_date, loan_id order by value_date
                                    range between unbounded preceding and current row) as cum_paid
    from ledger
),

covered as (
    select i.as_of_date, i.loan_id, i.installment_order, i.due_date, min(r.value_date) as paid_on
    from installments as i
    left join running as r
        on r.as_of_date = i.as_of_date and r.loan_id = i.loan_id
       and r.cum_paid >= i.cum_due - {{ policy('paid_tolerance') }}
    where i.due_date < i.as_of_date and i.due_date > i.as_of_date - 180
    group by i.as_of_date, i.loan_id, i.installment_order, i.due_date
),

lateness as (
    select as_of_date, loan_id,
           max(greatest(coalesce(paid_on, as_of_date) - due_date, 0)) as max_days_late_180d,
           count(*) filter (where coalesce(paid_on, as_of_date) > due_date) as late_installments_180d
    from covered
    group by as_of_date, loan_id
),

-- gateway payments initiated in the last 30 days, in their latest state known on the date
debits as (
    select d.as_of_date, g.payment_id,
           arg_max(g.loan_id, g.settlement_date) as loan_id,
           arg_max(g.status, g.settlement_date) as status,
           arg_max(g.initiated_on, g.settlement_date) as initiated_on
    from {{ ref('stg_gateway__settlements') }} as g
    inner join dates as d
        on g.settlement_date <= d.as_of_date and g.initiated_on <= d.as_of_date
       and g.initiated_on > d.as_of_date - 30
    group by d.as_of_date, g.payment_id
),

failed as (
    select as_of_date, loan_id,
           count(*) filter (where initiated_on > as_of_date - 7) as failed_debits_7d,
           count(*) as failed_debits_30d
    from debits
    where status = 'failed'
    group by as_of_date, loan_id
),

actions as materialized (
    select d.as_of_date, a.action_id, a.loan_id, a.channel, a.outcome, a.action_on, a.promised_amount,
           a.promised_date
    from {{ ref('stg_core_banking__collection_actions') }} as a
    inner join dates as d on a.action_on <= d.as_of_date and a.action_on > d.as_of_date - 90
),

contacts as (
    select as_of_date, loan_id,
           count(*) filter (where channel = 'call' and action_on > as_of_date - 30) as calls_30d,
           count(*) filter (where channel in ('call', 'field_visit') and action_on > as_of_date - 30
                              and outcome in ('contacted', 'promise_to_pay', 'refused', 'dispute')) as contacts_30d,
           count(*) filter (where channel in ('call', 'field_visit') and action_on > as_of_date - 30
                              and outcome in ('refused', 'dispute')) as refusals_30d,
           count(*) filter (where outcome = 'promise_to_pay') as promises_90d,
           max(action_on) as last_action_on
    from actions
    group by as_of_date, loan_id
),

-- a promise is judged once, on promised_date + 1 (section 4), so only when that is <= the date
promises_judged as (
    select p.as_of_date, p.action_id, p.loan_id, max(p.promised_amount) as promised_amount,
           coalesce(sum(case when t.txn_type = 'repayment' then t.amount
                             when t.txn_type = 'reversal' then -t.amount end), 0) as paid
    from actions as p
    left join {{ ref('stg_core_banking__loan_transactions') }} as t
        on t.loan_id = p.loan_id and t.txn_type in ('repayment', 'reversal')
       and t.value_date between p.action_on and p.promised_date
       and t.booked_on <= p.promised_date + 1
    where p.outcome = 'promise_to_pay' and p.promised_date + 1 <= p.as_of_date
    group by p.as_of_date, p.action_id, p.loan_id
),

promises as (
    select as_of_date, loan_id,
           count(*) filter (where paid < promised_amount - {{ policy('ptp_tolerance') }}) as promises_broken_90d
    from promises_judged
    group by as_of_date, loan_id
)

select
    b.as_of_date,
    b.loan_id,
    cast(b.dpd as integer) as dpd,
    bk.bucket,
    cast(bk.bucket_order as integer) as bucket_order,
    cast(b.missed_installments as integer) as missed_installments,
    cast(b.overdue_amount / nullif(b.principal, 0) as double) as overdue_ratio,
    cast(b.outstanding_principal / nullif(b.principal, 0) as double) as outstanding_ratio,
    cast(b.principal as double) as principal,
    cast(datediff('month', b.disbursed_on, b.as_of_date) as integer) as months_on_book,
    cast(coalesce(s.remaining_installments, 0) as integer) as remaining_installments,
    cast(s.next_due_on - b.as_of_date as integer) as days_to_next_due,
    cast(s.due_next_30d / nullif(b.principal, 0) as double) as due_next_30d_ratio,
    -- what must be paid within 30 days to stay current, against what is paid so far
    cast(greatest(coalesce(s.cum_due_next_30d, 0) - b.paid_amount, 0) / nullif(b.principal, 0) as double)
        as unpaid_due_next_30d_ratio,
    p.product_type,
    b.channel,
    coalesce(c.province, 'unknown') as province,
    cast(c.monthly_income as double) as monthly_income,
    c.employment_type,
    cast(floor((b.as_of_date - c.birth_date) / 365.25) as integer) as age,
    cast(coalesce(pm.payments_30d, 0) as integer) as payments_30d,
    cast(coalesce(pm.payments_90d, 0) as integer) as payments_90d,
    cast(coalesce(pm.payments_180d, 0) as integer) as payments_180d,
    cast(coalesce(pm.paid_30d, 0) / nullif(s.due_30d, 0) as double) as paid_to_due_30d,
    cast(coalesce(pm.paid_90d, 0) / nullif(s.due_90d, 0) as double) as paid_to_due_90d,
    cast(coalesce(pm.paid_180d, 0) / nullif(s.due_180d, 0) as double) as paid_to_due_180d,
    cast(b.as_of_date - pm.last_payment_on as integer) as days_since_last_payment,
    cast(coalesce(lt.max_days_late_180d, 0) as integer) as max_days_late_180d,
    cast(coalesce(lt.late_installments_180d, 0) as integer) as late_installments_180d,
    cast(coalesce(f.failed_debits_7d, 0) as integer) as failed_debits_7d,
    cast(coalesce(f.failed_debits_30d, 0) as integer) as failed_debits_30d,
    cast(coalesce(ct.calls_30d, 0) as integer) as calls_30d,
    cast(coalesce(ct.contacts_30d, 0) as integer) as contacts_30d,
    cast(coalesce(ct.refusals_30d, 0) as integer) as refusals_30d,
    cast(coalesce(ct.promises_90d, 0) as integer) as promises_90d,
    cast(coalesce(pr.promises_broken_90d, 0) as integer) as promises_broken_90d,
    cast(b.as_of_date - ct.last_action_on as integer) as days_since_last_action
from base as b
inner join {{ ref('delinquency_buckets') }} as bk
    on b.dpd >= bk.dpd_from and (bk.dpd_to is null or b.dpd <= bk.dpd_to)
left join {{ ref('stg_core_banking__loan_products') }} as p on p.product_id = b.product_id
left join {{ ref('int_customers_pseudonymised') }} as c on c.customer_id = b.customer_id
left join schedule as s on s.as_of_date = b.as_of_date and s.loan_id = b.loan_id
left join payments as pm on pm.as_of_date = b.as_of_date and pm.loan_id = b.loan_id
left join lateness as lt on lt.as_of_date = b.as_of_date and lt.loan_id = b.loan_id
left join failed as f on f.as_of_date = b.as_of_date and f.loan_id = b.loan_id
left join contacts as ct on ct.as_of_date = b.as_of_date and ct.loan_id = b.loan_id
left join promises as pr on pr.as_of_date = b.as_of_date and pr.loan_id = b.loan_id
{% endmacro %}


{#-
  Section 6 outcome of each loan on book in `starts` (loan_state rows): 1 when its bucket
  30 days later (`ends`: loan_state rows as known on as_of_date + 30) is worse than its
  bucket on the date, or it was written off in (date, date + 30]; settling, staying or
  improving is 0, so a loan already in M6+ is 1 only when written off.
-#}
{% macro roll_forward_labels(starts, ends) %}
select
    s.as_of_date,
    s.loan_id,
    bs.bucket,
    case when e.is_on_book then be.bucket else e.left_book_as end as state_after_30d,
    case when e.left_book_as = 'written_off' and e.left_book_on > s.as_of_date
              and e.left_book_on <= s.as_of_date + 30 then 1
         when e.is_on_book and be.bucket_order > bs.bucket_order then 1
         else 0 end as label
from {{ starts }} as s
inner join {{ ends }} as e on e.loan_id = s.loan_id and e.as_of_date = s.as_of_date + 30
inner join {{ ref('delinquency_buckets') }} as bs
    on s.dpd >= bs.dpd_from and (bs.dpd_to is null or s.dpd <= bs.dpd_to)
inner join {{ ref('delinquency_buckets') }} as be
    on e.dpd >= be.dpd_from and (be.dpd_to is null or e.dpd <= be.dpd_to)
where s.is_on_book
{% endmacro %}
