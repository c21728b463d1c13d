{#-
  Loan state as known at the end of each date in `dates` (a subquery or relation with
  one column as_of_date): business_rules.md sections 1 and 2. The one implementation
  behind the daily business date, the month-end snapshots (roll rates, vintages, cures,
  recoveries) and the risk model's training snapshots. One row per (as_of_date, loan
  that exists on it). The ledger (int_ledger_counted) is aggregated per loan and date once,
  then joined to the cumulated schedule. `only_loans` (a subquery with one column loan_id)
  restricts it to those loans: the daily state recomputes only loans whose state can have
  changed and carries the others forward (int_loan_state_on_date).
-#}
{% macro loan_state(dates, only_loans=none) %}
with params as (
    select {{ policy('paid_tolerance') }} as paid_tolerance
),

dates as materialized (
    select distinct as_of_date from {{ dates }}
),

loans as (
    select d.as_of_date, l.loan_id, l.customer_id, l.product_id, l.channel, l.principal, l.disbursed_on,
           l.status, l.status_changed_on
    from {{ ref('stg_core_banking__loans') }} as l
    inner join dates as d on l.disbursed_on <= d.as_of_date
    {%- if only_loans is not none %}
    where l.loan_id in (select loan_id from {{ only_loans }})
    {%- endif %}
),

-- ledger known on each date (section 1): int_ledger_counted carries each row's first known
-- date and signed effect, so this is one filtered aggregation
ledger as materialized (
    select
        d.as_of_date,
        e.loan_id,
        sum(e.paid_delta) as paid,
        sum(e.principal_delta) as principal_reduction,
        min(case when e.txn_type = 'write_off' then e.value_date end) as first_write_off_on
    from {{ ref('int_ledger_counted') }} as e
    inner join dates as d on e.counts_from <= d.as_of_date
    {%- if only_loans is not none %}
    where e.loan_id in (select loan_id from {{ only_loans }})
    {%- endif %}
    group by d.as_of_date, e.loan_id
),

book as materialized (
    select
        l.*,
        coalesce(g.paid, 0) as paid,
        -- an installment is unpaid when cum_due - paid > tolerance, i.e. cum_due > paid + tolerance
        coalesce(g.paid, 0) + p.paid_tolerance as paid_plus_tolerance,
        coalesce(g.principal_reduction, 0) as principal_reduction,
        g.first_write_off_on,
        case when l.status in ('settled', 'written_off') and l.status_changed_on <= l.as_of_date
             then l.status_changed_on end as status_left_on
    from loans as l
    left join ledger as g on g.loan_id = l.loan_id and g.as_of_date = l.as_of_date
    cross join params as p
),

schedule_state as (
    select
        b.as_of_date,
        b.loan_id,
        min(case when s.due_date < b.as_of_date and s.cum_due > b.paid_plus_tolerance
                 then s.due_date end) as earliest_unpaid_past_due_date,
        count(case when s.due_date < b.as_of_date and s.cum_due > b.paid_plus_tolerance
                   then 1 end) as missed_installments,
        coalesce(sum(case when s.due_date < b.as_of_date then s.due_amount end), 0) as past_due_total,
        coalesce(bool_or(s.installment_order = 1 and s.cum_due > b.paid_plus_tolerance), false)
            as first_installment_unpaid
    from {{ ref('int_installments_cumulated') }} as s
    inner join book as b on b.loan_id = s.loan_id
    -- installments not yet due cannot be late; installment 1 is kept for the first-payment flag
    where s.due_date < b.as_of_date or s.installment_order = 1
    group by b.as_of_date, b.loan_id
)

select
    b.as_of_date,
    b.loan_id,
    b.customer_id,
    b.product_id,
    b.channel,
    b.principal,
    b.disbursed_on,
    -- leaves the book: first write_off row known on the date, or settled / written_off status
    -- from status_changed_on <= the date, whichever first (a tie goes to the write_off row)
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
    cast(case when coalesce(s.past_due_total, 0) > b.paid_plus_tolerance
              then coalesce(s.past_due_total, 0) - b.paid else 0 end as decimal(18, 2)) as overdue_amount,
    cast(coalesce(b.as_of_date - s.earliest_unpaid_past_due_date, 0) as integer) as dpd,
    cast(coalesce(s.missed_installments, 0) as integer) as missed_installments,
    coalesce(s.first_installment_unpaid, false) as first_installment_unpaid
from book as b
left join schedule_state as s on s.loan_id = b.loan_id and s.as_of_date = b.as_of_date
{% endmacro %}
