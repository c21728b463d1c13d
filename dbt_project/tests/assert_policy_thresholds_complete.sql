-- Every threshold name the SQL models read with policy() must exist in the seed.
with required(name) as (
    values ('paid_tolerance'), ('flag_missed_installments'), ('flag_large_overdue_amount'),
           ('flag_failed_debits_count'), ('flag_failed_debits_window_days'),
           ('flag_first_payment_default_dpd')
)
select r.name
from required r
left join {{ ref('policy_thresholds') }} p on p.name = r.name
where p.value is null
