"""Where Arrears reads and writes, from the environment (outputs.md, "How it is run").

Every path derives from ARREARS_HOME. `apply_defaults()` fills the documented
embedded defaults into os.environ so Dagster resources can use `EnvVar` and
dbt's profile can use `env_var()` whether or not the user set them.
"""

import logging
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
EXPECTATIONS_DIR = REPO_ROOT / "expectations"

DEV_PII_KEY = "arrears-development-key-not-for-production"

log = logging.getLogger("arrears")


def arrears_home() -> Path:
    return Path(os.environ.get("ARREARS_HOME") or REPO_ROOT / ".arrears").resolve()


def simulator_dir(home: Path | None = None) -> Path:
    return (home or arrears_home()) / "source"


def warehouse_path(home: Path | None = None) -> Path:
    return (home or arrears_home()) / "warehouse" / "arrears.duckdb"


def bi_path(home: Path | None = None) -> Path:
    return (home or arrears_home()) / "bi" / "arrears.duckdb"


def dagster_home(home: Path | None = None) -> Path:
    return (home or arrears_home()) / "dagster"


def apply_defaults() -> None:
    """Set every ARREARS_* variable that the user left unset to its embedded default."""
    home = arrears_home()
    os.environ["ARREARS_HOME"] = str(home)
    # dbt and dagster are console scripts beside this interpreter (the project's venv).
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    os.environ.setdefault("ARREARS_SOURCE_URL", f"sqlite:///{simulator_dir(home) / 'core_banking.sqlite'}")
    os.environ.setdefault("ARREARS_PAYMENTS_DIR", str(simulator_dir(home) / "payments"))
    os.environ.setdefault("ARREARS_OPS_URL", f"sqlite:///{home / 'ops' / 'operations.sqlite'}")
    os.environ.setdefault("ARREARS_WAREHOUSE", str(warehouse_path(home)))
    os.environ.setdefault("DAGSTER_HOME", str(dagster_home(home)))
    if not os.environ.get("ARREARS_PII_KEY"):
        log.warning(
            "ARREARS_PII_KEY is not set: customer keys are hashed with the DEVELOPMENT key. "
            "Set ARREARS_PII_KEY from your secret store before using real customer data."
        )
        os.environ["ARREARS_PII_KEY"] = DEV_PII_KEY
    for d in (home / "warehouse", home / "bi", home / "ops", Path(os.environ["DAGSTER_HOME"])):
        d.mkdir(parents=True, exist_ok=True)
