"""Portfolio reporting: early-warning checks that reach the engineers on call, and the
management report (one self-contained HTML file per business date).

- One asset check per portfolio warning rule (business_rules.md section 5) on
  mart_early_warnings: it fails with severity WARN when the rule holds on the business date,
  and sends exactly one alert (run log + ARREARS_ALERT_WEBHOOK when set) per warning raised.
- `reports/management_report`: $ARREARS_HOME/reports/management_report_YYYY-MM-DD.html with
  every chart drawn as inline SVG (matplotlib, fonts as paths): readable offline, no network.
  The path and the headline figures are in the materialization metadata.
"""

import html
import io
import os
from datetime import date
from pathlib import Path

import dagster as dg

from .alerts import send_alert
from .partitions import business_dates
from .resources import ArrearsHome, Warehouse

WARNING_RULES = {
    "par30_above_line": "PAR30 of the overall portfolio is above the warning line (policy par30_warning_line).",
    "par30_monthly_rise": "PAR30 rose by more than par30_monthly_rise against the same day of the previous "
                          "month (clamped to its length; skipped when that day was never processed).",
}

REPORT_MARTS = ["mart_portfolio_daily", "fct_loan_delinquency_daily", "mart_roll_rates", "mart_vintage",
                "mart_recovery_monthly", "mart_collection_effectiveness", "mart_early_warnings", "mart_cure_rates"]

BUCKETS = ["M0", "M1", "M2", "M3", "M4", "M5", "M6", "M6+"]
TO_STATES = BUCKETS + ["settled", "written_off"]


# --------------------------------------------------------------------------- warning checks

def _warning_check(rule: str, description: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=dg.AssetKey("mart_early_warnings"), name=rule, blocking=False, description=description)
    def _check(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
        day = context.partition_key
        with warehouse.connect() as con:
            row = con.execute("SELECT value, threshold, message FROM marts.mart_early_warnings "
                              "WHERE as_of_date = ? AND rule = ?", [day, rule]).fetchone()
        if row is None:
            return dg.AssetCheckResult(passed=True, metadata={"rule": rule},
                                       description=f"{rule}: no warning on {day}")
        value, threshold, message = row
        delivered = send_alert(rule, day, message, {"rule": rule, "value": value, "threshold": threshold},
                               logger=context.log)
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description=message,
            metadata={"rule": rule, "value": float(value), "threshold": float(threshold),
                      "message": message, "webhook_delivered": delivered},
        )

    return _check


reporting_checks: list = [_warning_check(rule, text) for rule, text in WARNING_RULES.items()]


# --------------------------------------------------------------------------- report data

def _df(con, sql: str, params=()):
    return con.execute(sql, list(params)).df()


def report_data(con, day: str) -> dict:
    """Everything the report draws, read from the marts for business date `day` (as known on it)."""
    d = {}
    d["overall"] = _df(con, """SELECT * FROM marts.mart_portfolio_daily
                               WHERE segment_type = 'all' AND as_of_date <= ? ORDER BY as_of_date""", [day])
    # Month-ends processed plus D: a bounded scan of the daily fact on a large book.
    d["buckets"] = _df(con, """
        SELECT as_of_date, bucket, sum(outstanding_principal)::DOUBLE AS balance, count(*) AS loans
        FROM marts.fct_loan_delinquency_daily
        WHERE as_of_date <= ? AND (as_of_date = last_day(as_of_date) OR as_of_date = ?)
        GROUP BY ALL ORDER BY as_of_date""", [day, day])
    d["rolls"] = _df(con, """SELECT * FROM marts.mart_roll_rates
                             WHERE month_end = (SELECT max(month_end) FROM marts.mart_roll_rates
                                                WHERE last_day(month_end + INTERVAL 1 DAY) <= ?)""", [day])
    d["vintage"] = _df(con, """SELECT * FROM marts.mart_vintage
                               WHERE last_day(cohort_month + to_months(mob)) <= ? ORDER BY cohort_month, mob""",
                       [day])
    d["recovery"] = _df(con, """SELECT * FROM marts.mart_recovery_monthly
                                WHERE last_day(month) <= ? ORDER BY month, severity""", [day])
    d["ptp"] = _df(con, """
        SELECT month, channel, sum(promises_judged) AS judged, sum(promises_kept) AS kept,
               sum(promises_kept)::DOUBLE / nullif(sum(promises_judged), 0) AS ptp_kept_rate
        FROM marts.mart_collection_effectiveness WHERE month <= ?
        GROUP BY ALL HAVING sum(promises_judged) > 0 ORDER BY month, channel""", [day])
    d["warnings"] = _df(con, """SELECT * FROM marts.mart_early_warnings WHERE as_of_date <= ?
                                ORDER BY as_of_date DESC, rule LIMIT 30""", [day])
    d["cure"] = _df(con, """SELECT * FROM marts.mart_cure_rates
                            WHERE last_day(month_end + INTERVAL 1 DAY) <= ? ORDER BY month_end""", [day])
    return d


def headline(data: dict, day: str) -> dict:
    """The figures shown at the top of the report and in the materialization metadata."""
    o = data["overall"]
    today = o[o["as_of_date"].astype(str).str[:10] == day]
    h = {"business_date": day}
    if len(today):
        r = today.iloc[0]
        h |= {"loans_on_book": int(r["loans_on_book"]), "outstanding_principal": float(r["outstanding_principal"]),
              "overdue_rate_count": _num(r["overdue_rate_count"]), "par_0": _num(r["par_0"]),
              "par_30": _num(r["par_30"]), "par_90": _num(r["par_90"])}
    w = data["warnings"]
    h["warnings_raised"] = int((w["as_of_date"].astype(str).str[:10] == day).sum()) if len(w) else 0
    c = data["cure"].dropna(subset=["cure_rate"]) if len(data["cure"]) else data["cure"]
    if len(c):
        h["latest_cure_rate"] = float(c.iloc[-1]["cure_rate"])
    r = data["rolls"]
    m0 = r[(r["from_bucket"] == "M0") & (r["to_state"] == "M1")] if len(r) else r
    if len(m0):
        h["latest_roll_m0_to_m1_balance"] = _num(m0.iloc[0]["roll_rate_balance"])
    return h


def _num(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if f != f else f


# --------------------------------------------------------------------------- charts

def _svg(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _empty(ax, what: str):
    ax.text(0.5, 0.5, f"No {what} yet for this business date", ha="center", va="center", fontsize=11, color="#666")
    ax.set_axis_off()


def _figure(w=9.0, h=3.6, ncols=1):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "path", "font.size": 9, "axes.spines.top": False,
                         "axes.spines.right": False})
    return plt.subplots(1, ncols, figsize=(w, h))


def _pct_axis(ax):
    from matplotlib.ticker import PercentFormatter

    ax.yaxis.set_major_formatter(PercentFormatter(1.0))


def chart_par_trend(data) -> str:
    fig, ax = _figure()
    o = data["overall"]
    if len(o):
        for col, label in (("par_0", "PAR0"), ("par_30", "PAR30"), ("par_60", "PAR60"), ("par_90", "PAR90")):
            ax.plot(o["as_of_date"], o[col], label=label, marker="." if len(o) < 40 else None)
        _pct_axis(ax)
        ax.legend(ncol=4, frameon=False)
        ax.set_ylabel("share of outstanding principal")
        fig.autofmt_xdate()
    else:
        _empty(ax, "portfolio rows")
    return _svg(fig)


def chart_buckets(data) -> str:
    fig, ax = _figure()
    b = data["buckets"]
    if len(b):
        pv = b.pivot_table(index="as_of_date", columns="bucket", values="balance", aggfunc="sum").fillna(0)
        pv = pv[[c for c in BUCKETS if c in pv.columns]]
        share = pv.div(pv.sum(axis=1).where(pv.sum(axis=1) != 0, 1), axis=0)
        labels = [str(x)[:10] for x in share.index]
        bottom = [0.0] * len(share)
        colors = ["#4caf50", "#cddc39", "#ffc107", "#ff9800", "#ff5722", "#e53935", "#b71c1c", "#4a148c"]
        for i, col in enumerate(share.columns):
            ax.bar(labels, share[col], bottom=bottom, label=col, color=colors[BUCKETS.index(col)])
            bottom = [x + y for x, y in zip(bottom, share[col])]
        _pct_axis(ax)
        ax.set_ylabel("share of outstanding principal")
        ax.legend(ncol=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.18))
        plt_rotate(ax)
    else:
        _empty(ax, "loans on book")
    return _svg(fig)


def plt_rotate(ax):
    for t in ax.get_xticklabels():
        t.set_rotation(45)
        t.set_ha("right")


def chart_roll_heatmap(data) -> str:
    fig, ax = _figure(9.0, 4.2)
    r = data["rolls"]
    if len(r):
        rows = [b for b in BUCKETS if b in set(r["from_bucket"])]
        grid = [[None] * len(TO_STATES) for _ in rows]
        for _, x in r.iterrows():
            grid[rows.index(x["from_bucket"])][TO_STATES.index(x["to_state"])] = _num(x["roll_rate_balance"])
        values = [[v if v is not None else 0.0 for v in row] for row in grid]
        im = ax.imshow(values, cmap="Reds", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(TO_STATES)), TO_STATES)
        plt_rotate(ax)
        ax.set_yticks(range(len(rows)), rows)
        ax.set_xlabel("state at the next month-end")
        ax.set_ylabel(f"bucket at {str(r['month_end'].iloc[0])[:10]}")
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                if v is not None:
                    ax.text(j, i, f"{v:.1%}", ha="center", va="center", fontsize=8,
                            color="white" if v > 0.6 else "black")
        fig.colorbar(im, ax=ax, format="{x:.0%}", label="roll rate (balance)")
    else:
        _empty(ax, "roll rates (needs two month-ends)")
    return _svg(fig)


def chart_vintage(data) -> str:
    fig, (a1, a2) = _figure(10.0, 3.8, ncols=2)
    v = data["vintage"]
    if len(v):
        cohorts = sorted(v["cohort_month"].unique())[-12:]
        for c in cohorts:
            s = v[v["cohort_month"] == c]
            a1.plot(s["mob"], s["vintage_dpd30_balance"], label=str(c)[:7])
            a2.plot(s["mob"], s["ever_dpd30_rate"], label=str(c)[:7])
        for ax, title in ((a1, "DPD30+ balance / disbursed"), (a2, "ever DPD30+ (share of loans)")):
            _pct_axis(ax)
            ax.set_xlabel("months on book")
            ax.set_title(title)
        a2.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5), title="cohort")
    else:
        _empty(a1, "vintages")
        a2.set_axis_off()
    return _svg(fig)


def chart_recovery(data) -> str:
    fig, ax = _figure()
    r = data["recovery"]
    if len(r):
        pv = r.pivot_table(index="month", columns="severity", values="recovery_rate", aggfunc="sum").tail(12)
        labels = [str(x)[:7] for x in pv.index]
        sev = [s for s in ("mild", "moderate", "severe") if s in pv.columns]
        width = 0.8 / max(len(sev), 1)
        colors = {"mild": "#ffc107", "moderate": "#ff5722", "severe": "#b71c1c"}
        for i, s in enumerate(sev):
            ax.bar([k + i * width for k in range(len(labels))], pv[s].fillna(0), width, label=s, color=colors[s])
        ax.set_xticks([k + width * (len(sev) - 1) / 2 for k in range(len(labels))], labels)
        _pct_axis(ax)
        ax.set_ylabel("collected / overdue at start")
        ax.legend(frameon=False, title="severity at previous month-end")
    else:
        _empty(ax, "recovery months (needs a full month after a month-end)")
    return _svg(fig)


def chart_ptp(data) -> str:
    fig, ax = _figure()
    p = data["ptp"]
    if len(p):
        import pandas as pd

        p = p.assign(month=pd.to_datetime(p["month"]))
        recent = sorted(p["month"].unique())[-12:]
        p = p[p["month"].isin(recent)].sort_values("month")
        for ch in sorted(p["channel"].unique()):
            s = p[p["channel"] == ch]
            ax.plot(s["month"], s["ptp_kept_rate"], marker="o", label=f"{ch} ({int(s['judged'].sum())} judged)")
        ax.set_xticks(recent, [str(m)[:7] for m in recent])
        plt_rotate(ax)
        _pct_axis(ax)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("promises kept / judged")
        ax.legend(frameon=False, title="channel")
    else:
        _empty(ax, "promises judged")
    return _svg(fig)


# --------------------------------------------------------------------------- HTML

def _fmt(v, pct=False):
    if v is None:
        return "n/a"
    return f"{v:.2%}" if pct else (f"{v:,.2f}" if isinstance(v, float) else f"{v:,}")


def render_report(data: dict, day: str) -> tuple[str, dict]:
    h = headline(data, day)
    cards = [("Loans on book", _fmt(h.get("loans_on_book"))),
             ("Outstanding principal (CNY)", _fmt(h.get("outstanding_principal"))),
             ("Overdue rate (count)", _fmt(h.get("overdue_rate_count"), True)),
             ("PAR0", _fmt(h.get("par_0"), True)), ("PAR30", _fmt(h.get("par_30"), True)),
             ("PAR90", _fmt(h.get("par_90"), True)),
             ("Latest cure rate M1", _fmt(h.get("latest_cure_rate"), True)),
             ("Warnings raised today", str(h["warnings_raised"]))]
    w = data["warnings"]
    today = w[w["as_of_date"].astype(str).str[:10] == day] if len(w) else w
    if len(today):
        warn_html = "<ul class='warn'>" + "".join(
            f"<li><b>{html.escape(r['rule'])}</b>: {html.escape(r['message'])}</li>" for _, r in today.iterrows()) + "</ul>"
    else:
        warn_html = "<p class='ok'>No portfolio warning on this business date.</p>"
    if len(w):
        warn_html += ("<table><tr><th>date</th><th>rule</th><th>value</th><th>threshold</th><th>message</th></tr>"
                      + "".join(f"<tr><td>{str(r['as_of_date'])[:10]}</td><td>{html.escape(r['rule'])}</td>"
                                f"<td>{r['value']:.4%}</td><td>{r['threshold']:.4%}</td>"
                                f"<td>{html.escape(r['message'])}</td></tr>" for _, r in w.iterrows())
                      + "</table><p class='note'>Last 30 warnings up to this date.</p>")
    sections = [
        ("par-trend", "Portfolio at risk (PAR) trend",
         "Share of outstanding principal of loans more than 0 / 30 / 60 / 90 days past due, per processed day.",
         chart_par_trend(data)),
        ("bucket-distribution", "Bucket distribution over time",
         "Outstanding principal by delinquency bucket at each processed month-end and on the business date.",
         chart_buckets(data)),
        ("roll-rates", "Roll-rate matrix (latest complete month)",
         "Share of each bucket's outstanding principal at the month-end that sits in each state at the next "
         "month-end (buckets, settled, written off). Rows sum to 100%.",
         chart_roll_heatmap(data)),
        ("vintage", "Vintage curves",
         "Per disbursement cohort (last 12): DPD30+ balance incl. write-offs over disbursed principal, and the share "
         "of loans ever more than 30 days past due, by months on book.",
         chart_vintage(data)),
        ("recovery", "Recovery by severity",
         "Money collected in the month (capped at each loan's overdue amount) over the overdue amount at the "
         "previous month-end, by severity then.",
         chart_recovery(data)),
        ("ptp", "Promise-kept rate by channel",
         "Promises to pay judged the day after their promised date, by month of the promised date.",
         chart_ptp(data)),
    ]
    body = "".join(f"<section id='{sid}'><h2>{html.escape(t)}</h2><p class='note'>{html.escape(n)}</p>"
                   f"<div class='chart'>{svg}</div></section>" for sid, t, n, svg in sections)
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Arrears management report {day}</title>
<style>
body {{ font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1100px;
       color: #222; }}
h1 {{ margin-bottom: 4px; }} h2 {{ margin-top: 28px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }}
.cards {{ display: flex; flex-wrap: wrap; gap: 10px; margin: 16px 0; }}
.card {{ border: 1px solid #ddd; border-radius: 6px; padding: 8px 14px; min-width: 150px; }}
.card .v {{ font-size: 20px; font-weight: 600; }} .card .k {{ font-size: 12px; color: #666; }}
.note {{ color: #666; font-size: 13px; }} .chart svg {{ max-width: 100%; height: auto; }}
.warn li {{ color: #b71c1c; }} .ok {{ color: #2e7d32; }}
table {{ border-collapse: collapse; font-size: 12px; }} td, th {{ border: 1px solid #ddd; padding: 3px 6px; }}
</style></head><body>
<h1>Arrears &mdash; management report</h1>
<p class="note">Business date {day}: figures as known at the end of that day. Generated offline from the
warehouse marts; all charts are embedded.</p>
<div class="cards">{''.join(f"<div class='card'><div class='v'>{v}</div><div class='k'>{html.escape(k)}</div></div>"
                          for k, v in cards)}</div>
<section id="warnings"><h2>Warnings raised</h2>{warn_html}</section>
{body}
</body></html>
"""
    return doc, h


def report_path(home: str | Path, day: str) -> Path:
    return Path(home) / "reports" / f"management_report_{day}.html"


def write_report(con, home: str | Path, day: str) -> tuple[Path, dict]:
    doc, h = render_report(report_data(con, day), day)
    path = report_path(home, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(doc, encoding="utf-8")
    os.replace(tmp, path)
    return path, h


@dg.asset(
    key=["reports", "management_report"],
    group_name="reporting",
    kinds={"html"},
    partitions_def=business_dates,
    deps=[dg.AssetKey(m) for m in REPORT_MARTS],
    description="Management report: one self-contained offline HTML file per business date under "
                "$ARREARS_HOME/reports/ (PAR trend, bucket distribution, roll-rate heatmap, vintage curves, "
                "recovery by severity, promise-kept rate by channel, warnings raised).",
)
def management_report(context: dg.AssetExecutionContext, warehouse: Warehouse,
                      arrears_home: ArrearsHome) -> dg.MaterializeResult:
    day = context.partition_key
    date.fromisoformat(day)
    with warehouse.connect() as con:
        path, h = write_report(con, arrears_home.path, day)
    meta = {"report": dg.MetadataValue.path(str(path)), "report_url": dg.MetadataValue.url(path.resolve().as_uri())}
    meta |= {k: v for k, v in h.items() if k != "business_date" and v is not None}
    context.log.info(f"Management report {path}: " + ", ".join(f"{k}={v}" for k, v in h.items()))
    return dg.MaterializeResult(metadata=meta)


reporting_assets: list = [management_report]
