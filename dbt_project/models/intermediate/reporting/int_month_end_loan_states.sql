{{ config(materialized='view') }}
{#-
  Loan state at every month-end m <= D, as known on m (business_rules.md section 0: "the state
  at month-end m" is section 2 with D = m), with its bucket and severity (section 3). A view
  over the month-end rows of int_loan_state_snapshots, which computes each month-end once.
  One row per (month_end, loan that exists on m); is_on_book tells whether it is on book.
-#}
select
    s.as_of_date as month_end,
    s.loan_id,
    s.disbursed_on,
    s.principal,
    s.is_on_book,
    s.left_book_on,
    s.left_book_as,
    s.outstanding_principal,
    s.overdue_amount,
    s.dpd,
    b.bucket,
    b.bucket_order,
    b.severity
from {{ ref('int_loan_state_snapshots') }} as s
inner join {{ ref('delinquency_buckets') }} as b
    on s.dpd >= b.dpd_from and (b.dpd_to is null or s.dpd <= b.dpd_to)
where s.is_month_end
  and s.as_of_date <= {{ business_date() }}
