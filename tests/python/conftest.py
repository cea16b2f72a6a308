"""Shared fixtures: one sandbox process per test session (both simulators), reset per test.

`make python-tests` builds ./target/debug/orglink-sandbox first; the process is started with
`--exit-on-stdin-eof` so it can't outlive a crashed pytest.
"""

import json
import subprocess
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
BINARY = REPO / "target" / "debug" / "orglink-sandbox"
# shared/ sits beside the checkout (read-only reference material, never copied in).
REFERENCE = REPO / ".." / "shared" / "reference"

ZENDESK_EMAIL = "admin@example.com"
ZENDESK_TOKEN = "sandbox-zendesk-token"
ZENDESK_SUBDOMAIN = "orglink-sandbox"


@pytest.fixture(scope="session")
def sandbox():
    """{"salesforce": url, "zendesk": url} of a running sandbox."""
    if not BINARY.exists():
        pytest.fail(f"{BINARY} is missing: run `cargo build -p orglink-sandbox` (make python-tests does)")
    proc = subprocess.Popen(
        [str(BINARY), "--salesforce-port", "0", "--zendesk-port", "0", "--exit-on-stdin-eof"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        urls = json.loads(proc.stdout.readline())
        yield urls
    finally:
        proc.stdin.close()
        proc.terminate()
        proc.wait(timeout=10)


class Zendesk:
    """The Zendesk simulator: its URL, credentials and admin API."""

    def __init__(self, url):
        self.url = url
        self.email = ZENDESK_EMAIL
        self.token = ZENDESK_TOKEN
        self.subdomain = ZENDESK_SUBDOMAIN
        self.session = requests.Session()
        self.session.auth = (f"{ZENDESK_EMAIL}/token", ZENDESK_TOKEN)
        self.session.headers["Accept"] = "application/json"

    def api(self, method, path, **kwargs):
        return self.session.request(method, self.url + path, timeout=30, **kwargs)

    def admin(self, path, body=None):
        r = requests.post(self.url + "/_sandbox/" + path, json=body or {}, timeout=60)
        r.raise_for_status()
        return r.json() if r.content else None

    def admin_get(self, path):
        r = requests.get(self.url + "/_sandbox/" + path, timeout=60)
        r.raise_for_status()
        return r.json()

    def switches(self, **values):
        return self.admin("switches", values)


@pytest.fixture
def zendesk(sandbox):
    """The Zendesk simulator, reset to its startup state, with no search lag or job delay and
    the export's one-minute holdback off (tests turn them on where they matter)."""
    zd = Zendesk(sandbox["zendesk"])
    zd.admin("reset")
    zd.switches(search_lag_ms=0, job_delay_ms=0, incremental_min_age_secs=0)
    return zd
