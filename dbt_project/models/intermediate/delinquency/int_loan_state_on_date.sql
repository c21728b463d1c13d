{{ config(materialized='table') }}
{#-
  One row per loan that exists on D (disbursed_on <= D), as known at the end of D
  (business_rules.md sections 1 and 2). Rebuilt for each business date; history lives
  in the marts. The ledger is aggregated per loan once, then joined to the cumulated
  schedule: no per-day history is recomputed.
-#}
{%- set D = business_date() -%}

with params as (
    select {{ policy('paid_tolerance') }} as paid_tolerance
),

loans as (
    select loan_id, customer_id, product_id, channel, principal, disbursed_on, status, status_changed_on
    from {{ ref('stg_core_banking__loans') }}
    where disbursed_on <= {{ D }}
),

-- ledger rows known on D (section 1), aggregated per loan once. A reversal counts only when
-- the repayment it undoes also counts on D. Reversals are few: materialised first so the join
-- to the ledger builds its hash table on them.
reversals_known as materialized (
    select txn_id, loan_id, txn_type, amount, coalesce(principal_portion, 0) as principal_portion,
           value_date, reverses_txn_id
    from {{ ref('stg_core_banking__loan_transactions') }}
    where txn_type = 'reversal'
      and value_date <= {{ D }}
      and booked_on <= {{ D }}
),

counted as (
    select loan_id, txn_type, amount, coalesce(principal_portion, 0) as principal_portion, value_date
    from {{ ref('stg_core_banking__loan_transactions') }}
    where value_date <= {{ D }}
      and booked_on <= {{ D }}
      and txn_type <> 'reversal'
    union all
    select r.loan_id, r.txn_type, r.amount, r.principal_portion, r.value_date
    from reversals_known as r
    inner join {{ ref('stg_core_banking__loan_transactions') }} as undone
        on undone.txn_id = r.reverses_txn_id
    where undone.value_date <= {{ D }}
      and undone.booked_on <= {{ D }}
),

ledger as materialized (
    select
        loan_id,
        sum(case when txn_type in ('repayment', 'waiver') then amount
                 when txn_type = 'reversal' then -amount
                 else 0 end) as paid,
        sum(case when txn_type in ('repayment', 'waiver', 'write_off') then principal_portion
                 when txn_type = 'reversal' then -principal_portion
                 else 0 end) as principal_reduction,
        min(case when txn_type = 'write_off' then value_date end) as first_write_off_on
    from counted
    group by loan_id
),

schedule_state as (
    select
        s.loan_id,
        min(case when s.due_date < {{ D }} and s.cum_due - coalesce(g.paid, 0) > p.paid_tolerance
                 then s.due_date end) as earliest_unpaid_past_due_date,
        count(case when s.due_date < {{ D }} and s.cum_due - coalesce(g.paid, 0) > p.paid_tolerance
                   then 1 end) as missed_installments,
        coalesce(sum(case when s.due_date < {{ D }} then s.due_amount end), 0) as past_due_total,
        coalesce(bool_or(s.installment_order = 1 and s.cum_due - coalesce(g.paid, 0) > p.paid_tolerance), false)
            as first_installment_unpaid
    from {{ ref('int_installments_cumulated') }} as s
    left join ledger as g on g.loan_id = s.loan_id
    cross join params as p
    group by s.loan_id
),

book as (
    select
        l.*,
        coalesce(g.paid, 0) as paid,
        coalesce(g.principal_reduction, 0) as principal_reduction,
        g.first_write_off_on,
        case when l.status in ('settled', 'written_off') and l.status_changed_on <= {{ D }}
             then l.status_changed_on end as status_left_on
    from loans as l
    left join ledger as g on g.loan_id = l.loan_id
)

select
    {{ D }} as as_of_date,
    b.loan_id,
    b.customer_id,
    b.product_id,
    b.channel,
    b.principal,
    b.disbursed_on,
    -- leaves the book: first write_off row known on D, or settled / written_off status from
    -- status_changed_on <= D, whichever first (a tie goes to the write_off row)
    b.first_write_off_on is null and b.status_left_on is null as is_on_book,
    case when b.first_write_off_on is not null
              and (b.status_left_on is null or b.first_write_off_on <= b.status_left_on)
         then b.first_write_off_on else b.status_left_on end as left_book_on,
    case when b.first_write_off_on is not null
              and (b.status_left_on is null or b.first_write_off_on <= b.status_left_on)
         then 'written_off'
         when b.status_left_on is not null then b.status end as left_book_as,
    cast(b.paid as decimal(18, 2)) as paid_amount,
    cast(b.principal - b.principal_reduction as decimal(18, 2)) as outstanding_principal,
    cast(case when coalesce(s.past_due_total, 0) - b.paid > p.paid_tolerance
              then coalesce(s.past_due_total, 0) - b.paid else 0 end as decimal(18, 2)) as overdue_amount,
    cast(coalesce({{ D }} - s.earliest_unpaid_past_due_date, 0) as integer) as dpd,
    cast(coalesce(s.missed_installments, 0) as integer) as missed_installments,
    coalesce(s.first_installment_unpaid, false) as first_installment_unpaid
from book as b
left join schedule_state as s on s.loan_id = b.loan_id
cross join params as p
