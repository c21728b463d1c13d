"""Model versions on disk: artifact + metadata, and the champion named explicitly.

$ARREARS_HOME/models/<version>/model.joblib and metadata.json; champion.json
names the version scoring uses. Scoring never loads "the newest file".
"""

import json
import os
from pathlib import Path

import joblib


def save_version(root: Path, version: str, model, metadata: dict) -> Path:
    folder = root / version
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "model.joblib.tmp"
    joblib.dump(model, tmp)
    os.replace(tmp, folder / "model.joblib")
    (folder / "metadata.json").write_text(json.dumps(metadata | {"version": version}, indent=2, default=str))
    return folder


def load_version(root: Path, version: str):
    folder = root / version
    return joblib.load(folder / "model.joblib"), json.loads((folder / "metadata.json").read_text())


def champion_version(root: Path) -> str | None:
    path = root / "champion.json"
    return json.loads(path.read_text())["version"] if path.exists() else None


def set_champion(root: Path, version: str, why: str) -> None:
    tmp = root / "champion.json.tmp"
    tmp.write_text(json.dumps({"version": version, "why": why}))
    os.replace(tmp, root / "champion.json")
