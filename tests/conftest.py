"""Shared fixtures: real source databases (SQLite, PostgreSQL, MariaDB) and a fresh ARREARS_HOME.

PostgreSQL and MariaDB run on 127.0.0.1 on developer machines and in CI. Where
one is unreachable a test is skipped locally, but fails when CI is set: CI
must never go green without them.
"""

import json
import os
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))

PG_ADMIN = os.environ.get("ARREARS_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
MARIADB_ADMIN = os.environ.get("ARREARS_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test")


def _unreachable(kind: str, err: Exception):
    msg = f"{kind} on 127.0.0.1 is unreachable: {err}"
    if os.environ.get("CI"):
        pytest.fail(msg + " (required in CI)")
    pytest.skip(msg)


@pytest.fixture
def postgres_url():
    """A private schema in the test PostgreSQL database, dropped afterwards."""
    schema = f"arrears_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN)
    try:
        with admin.begin() as c:
            c.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except sa.exc.OperationalError as e:
        _unreachable("PostgreSQL", e)
    yield f"{PG_ADMIN}?options=-csearch_path%3D{schema}"
    with admin.begin() as c:
        c.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.dispose()


@pytest.fixture
def mariadb_url():
    """A private database on the test MariaDB server, dropped afterwards."""
    db = f"arrears_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(MARIADB_ADMIN)
    try:
        with admin.begin() as c:
            c.exec_driver_sql(f"CREATE DATABASE {db}")
    except sa.exc.OperationalError as e:
        _unreachable("MariaDB", e)
    yield MARIADB_ADMIN.rsplit("/", 1)[0] + f"/{db}"
    with admin.begin() as c:
        c.exec_driver_sql(f"DROP DATABASE {db}")
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'core_banking.sqlite'}"


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def any_source_url(request):
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def arrears_home(tmp_path, monkeypatch):
    """A fresh ARREARS_HOME with every ARREARS_* variable pointing into it."""
    home = tmp_path / "home"
    for var in ("ARREARS_SOURCE_URL", "ARREARS_PAYMENTS_DIR", "ARREARS_OPS_URL", "ARREARS_WAREHOUSE", "DAGSTER_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ARREARS_HOME", str(home))
    monkeypatch.setenv("ARREARS_PII_KEY", "test-pii-key")
    return home


@pytest.fixture
def alert_webhook(monkeypatch):
    """A webhook on 127.0.0.1 that ARREARS_ALERT_WEBHOOK points at; yields the list of JSON bodies received."""
    received: list = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("ARREARS_ALERT_WEBHOOK", f"http://127.0.0.1:{server.server_port}/hook")
    yield received
    server.shutdown()
