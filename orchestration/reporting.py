"""Portfolio reporting assets (issue: roll rates, vintages, warnings, management report)."""

reporting_assets: list = []
reporting_checks: list = []
