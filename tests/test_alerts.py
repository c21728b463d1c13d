"""Alerts reach a webhook on 127.0.0.1, and a missing or broken webhook never fails a run."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from orchestration.alerts import send_alert


class _Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        _Hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_alert_is_posted_to_the_webhook(monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hook.received = []
    monkeypatch.setenv("ARREARS_ALERT_WEBHOOK", f"http://127.0.0.1:{server.server_port}/hook")
    try:
        assert send_alert("par30_above_line", "2025-03-31", "PAR30 6.1% above 5.0%", {"value": 0.061})
    finally:
        server.shutdown()
    assert _Hook.received == [{"source": "arrears", "kind": "par30_above_line", "business_date": "2025-03-31",
                               "message": "PAR30 6.1% above 5.0%", "details": {"value": 0.061}}]


def test_no_webhook_logs_only(monkeypatch, caplog):
    monkeypatch.delenv("ARREARS_ALERT_WEBHOOK", raising=False)
    assert send_alert("quarantine", "2025-03-31", "too many bad rows") is False
    assert "ALERT [quarantine] 2025-03-31: too many bad rows" in caplog.text


def test_unreachable_webhook_does_not_raise(monkeypatch, caplog):
    monkeypatch.setenv("ARREARS_ALERT_WEBHOOK", "http://127.0.0.1:1/hook")
    assert send_alert("quarantine", "2025-03-31", "x") is False
    assert "alert webhook http://127.0.0.1:1/hook failed" in caplog.text
