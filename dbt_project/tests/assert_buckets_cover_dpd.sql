-- The bucket bands cover every dpd >= 0 exactly once (checked on 0..1000).
with dpd as (select range::integer as dpd from range(0, 1001))
select d.dpd, count(b.bucket) as matches
from dpd d
left join {{ ref('delinquency_buckets') }} b
  on d.dpd >= b.dpd_from and (b.dpd_to is null or d.dpd <= b.dpd_to)
group by d.dpd
having count(b.bucket) <> 1
