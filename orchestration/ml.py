"""Risk-model assets: features, training, scoring, monitoring (thin wrappers over ml_assets)."""

ml_asset_defs: list = []
ml_checks: list = []
ml_jobs: list = []
ml_schedules: list = []
