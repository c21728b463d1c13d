{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='txn_id',
    on_schema_change='append_new_columns',
) }}
{#-
  Every ledger row that counts (business_rules.md section 1), with the first date on which it
  is known: counts_from = max(value_date, booked_on), so "known on D" is counts_from <= D; a
  reversal counts from the later of its own two dates and those of the repayment it undoes,
  and never when that repayment is not in the ledger. The signed effect on paid(D) and on
  principal is computed once here, so the daily loan state, the risk features and the first
  dpd>30 day only filter on counts_from (independent of the business date; incremental on
  newly loaded rows, plus reversals whose repayment arrived after them).
-#}
{%- set watermark -%}
    (select coalesce(max(loaded_at), timestamp '1900-01-01') from {{ this }})
{%- endset %}

with new_rows as (
    select t.*
    from {{ ref('stg_core_banking__loan_transactions') }} as t
    {% if is_incremental() %}
    where t.loaded_at > {{ watermark }}
    union
    -- a reversal loaded before the repayment it undoes starts to count only now
    select r.*
    from {{ ref('stg_core_banking__loan_transactions') }} as r
    where r.txn_type = 'reversal'
      and r.reverses_txn_id in (select txn_id from {{ ref('stg_core_banking__loan_transactions') }}
                                where loaded_at > {{ watermark }})
    {% endif %}
)

select
    t.txn_id,
    t.loan_id,
    t.txn_type,
    t.value_date,
    cast(case when t.txn_type = 'reversal'
              then greatest(t.value_date, t.booked_on, u.value_date, u.booked_on)
              else greatest(t.value_date, t.booked_on) end as date) as counts_from,
    t.amount,
    cast(case when t.txn_type in ('repayment', 'waiver') then t.amount
              when t.txn_type = 'reversal' then -t.amount
              else 0 end as decimal(18, 2)) as paid_delta,
    cast(case when t.txn_type in ('repayment', 'waiver', 'write_off') then coalesce(t.principal_portion, 0)
              when t.txn_type = 'reversal' then -coalesce(t.principal_portion, 0)
              else 0 end as decimal(18, 2)) as principal_delta,
    t.loaded_at,
    -- when the warehouse learned that the row counts (a reversal: once its repayment is loaded too);
    -- the daily loan state recomputes the loans with rows known since its previous build
    case when t.txn_type = 'reversal' then greatest(t.loaded_at, u.loaded_at) else t.loaded_at end as known_at
from new_rows as t
left join {{ ref('stg_core_banking__loan_transactions') }} as u
    on t.txn_type = 'reversal' and u.txn_id = t.reverses_txn_id
-- a reversal of a repayment that is not in the ledger never counts
where t.txn_type <> 'reversal' or u.txn_id is not null
-- stored in loan order: the daily state aggregates it per loan (the weekly job warehouse_maintenance_weekly restores it)
order by t.loan_id, counts_from
