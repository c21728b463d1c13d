select
    loan_id,
    installment_no,
    due_date,
    principal_due,
    interest_due,
    fee_due,
    _loaded_at as loaded_at
from {{ source('core_banking', 'repayment_schedule') }}
