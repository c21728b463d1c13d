"""Alerts reach a webhook on 127.0.0.1, and a missing or broken webhook never fails a run."""

from orchestration.alerts import send_alert


def test_alert_is_posted_to_the_webhook(alert_webhook):
    assert send_alert("par30_above_line", "2025-03-31", "PAR30 6.1% above 5.0%", {"value": 0.061})
    assert alert_webhook == [{"source": "arrears", "kind": "par30_above_line", "business_date": "2025-03-31",
                               "message": "PAR30 6.1% above 5.0%", "details": {"value": 0.061}}]


def test_no_webhook_logs_only(monkeypatch, caplog):
    monkeypatch.delenv("ARREARS_ALERT_WEBHOOK", raising=False)
    assert send_alert("quarantine", "2025-03-31", "too many bad rows") is False
    assert "ALERT [quarantine] 2025-03-31: too many bad rows" in caplog.text


def test_unreachable_webhook_does_not_raise(monkeypatch, caplog):
    monkeypatch.setenv("ARREARS_ALERT_WEBHOOK", "http://127.0.0.1:1/hook")
    assert send_alert("quarantine", "2025-03-31", "x") is False
    assert "alert webhook http://127.0.0.1:1/hook failed" in caplog.text
