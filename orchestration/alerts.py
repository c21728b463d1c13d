"""Telling the data engineers on call: the run log always, a webhook when configured.

ARREARS_ALERT_WEBHOOK is a URL that accepts a JSON POST (a chat or paging
integration). Unset means log only, with no error. A webhook that fails is
logged, never allowed to fail the run that raised the alert.
"""

import json
import logging
import os
import urllib.request

log = logging.getLogger("arrears.alerts")


def send_alert(kind: str, business_date: str, message: str, details: dict | None = None, logger=None) -> bool:
    """Log the alert and POST it to the webhook if one is set; True when delivered."""
    (logger or log).warning(f"ALERT [{kind}] {business_date}: {message}")
    url = os.environ.get("ARREARS_ALERT_WEBHOOK")
    if not url:
        return False
    body = json.dumps({"source": "arrears", "kind": kind, "business_date": business_date,
                       "message": message, "details": details or {}}, default=str).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return 200 <= resp.status < 300
    except OSError as e:
        (logger or log).error(f"alert webhook {url} failed: {e}")
        return False
