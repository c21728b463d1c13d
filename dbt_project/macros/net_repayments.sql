{#-
  Collected money in a window, as known on a cut-off (business_rules.md section 4: promise to
  pay, recovery rate): repayments minus reversals, per key of `windows`. `windows` is a CTE or
  relation with columns loan_id, value_from, value_to, known_on and the columns in `keys`.
  A repayment counts when value_from <= value_date <= value_to and it is booked by known_on; a
  reversal counts when it is so too and the repayment it undoes is known on known_on (section 1).
  Waivers and recovery rows are not collected money. Keys without such rows get no row.
-#}
{% macro net_repayments(windows, keys) %}
    -- the windows' own rows first (materialized: the reversal look-up then joins only those, not
    -- every repayment of the ledger)
    with in_window as materialized (
        select {% for k in keys %}w.{{ k }}, {% endfor %}w.known_on, t.txn_type, t.amount, t.reverses_txn_id
        from {{ windows }} as w
        inner join {{ ref('stg_core_banking__loan_transactions') }} as t
            on t.loan_id = w.loan_id
           and t.value_date between w.value_from and w.value_to
           and t.booked_on <= w.known_on
        where t.txn_type in ('repayment', 'reversal')
    )
    select {% for k in keys %}r.{{ k }}, {% endfor %}
           sum(case when r.txn_type = 'repayment' then r.amount else -r.amount end) as net_paid
    from in_window as r
    left join {{ ref('stg_core_banking__loan_transactions') }} as u on u.txn_id = r.reverses_txn_id
    where r.txn_type = 'repayment'
       or (r.txn_type = 'reversal' and u.value_date <= r.known_on and u.booked_on <= r.known_on)
    group by {% for k in keys %}r.{{ k }}{% if not loop.last %}, {% endif %}{% endfor %}
{% endmacro %}
