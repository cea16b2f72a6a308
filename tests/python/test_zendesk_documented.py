"""The documented Zendesk bodies (tests/python/fixtures/zendesk_documented.json, each citing the
reference sheet) replayed: the sandbox answers with exactly those bodies."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

DOC = json.loads((Path(__file__).parent / "fixtures" / "zendesk_documented.json").read_text())


def test_duplicate_name_on_a_second_create_or_update(zendesk):
    body = {"organization": {"name": "Lorem Ipsum"}}
    first = zendesk.api("POST", "/api/v2/organizations/create_or_update", json=body)
    assert first.status_code == 201
    second = zendesk.api("POST", "/api/v2/organizations/create_or_update", json=body)
    assert second.status_code == DOC["duplicate_name"]["status"]
    assert second.json() == DOC["duplicate_name"]["body"]


def test_blank_name(zendesk):
    r = zendesk.api("POST", "/api/v2/organizations", json={"organization": {"name": ""}})
    assert r.status_code == DOC["blank_name"]["status"]
    assert r.json() == DOC["blank_name"]["body"]


def test_not_found(zendesk):
    r = zendesk.api("GET", "/api/v2/organizations/1234567.json")
    assert r.status_code == DOC["not_found"]["status"]
    assert r.json() == DOC["not_found"]["body"]


def test_update_rate_limit(zendesk):
    oid = zendesk.api("POST", "/api/v2/organizations", json={"organization": {"name": "Busy"}}).json()["organization"]["id"]
    statuses = [zendesk.api("PUT", f"/api/v2/organizations/{oid}", json={"organization": {"notes": str(i)}}) for i in range(6)]
    assert [r.status_code for r in statuses[:5]] == [200] * 5
    assert statuses[5].status_code == DOC["update_rate_limited"]["status"]
    assert statuses[5].json() == DOC["update_rate_limited"]["body"]
    assert "Retry-After" in statuses[5].headers


def _job(zendesk, r):
    job = r.json()["job_status"]
    for _ in range(200):
        status = zendesk.api("GET", f"/api/v2/job_statuses/{job['id']}.json").json()["job_status"]
        if status["status"] == "completed":
            return status
        time.sleep(0.02)
    pytest.fail("job never completed")


def test_job_status_shapes(zendesk):
    created = _job(zendesk, zendesk.api("POST", "/api/v2/organizations/create_many.json",
                                        json={"organizations": [{"name": "J1"}, {"name": "J2"}]}))
    assert set(created) == set(DOC["job_status_keys"]["keys"])
    assert all(set(r) == set(DOC["job_result_created"]["item_keys"]) for r in created["results"])
    ids = ",".join(str(r["id"]) for r in created["results"])
    updated = _job(zendesk, zendesk.api("PUT", f"/api/v2/organizations/update_many.json?ids={ids}",
                                        json={"organization": {"notes": "x"}}))
    for r in updated["results"]:
        assert {k: r[k] for k in DOC["job_result_updated"]["item"]} == DOC["job_result_updated"]["item"]


def test_webhook_envelope(zendesk):
    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        zendesk.switches(webhook_url=f"http://127.0.0.1:{server.server_port}/hook")
        zendesk.api("POST", "/api/v2/organizations", json={"organization": {"name": "Hooked", "external_id": "h"}})
        for _ in range(200):
            if received:
                break
            time.sleep(0.02)
    finally:
        server.shutdown()
    assert received, "no delivery"
    event = received[0]
    assert sorted(event) == sorted(DOC["webhook_envelope_keys"]["keys"])
    assert sorted(event["detail"]) == sorted(DOC["webhook_envelope_keys"]["detail_keys"])
    assert event["type"] == "zen:event-type:organization.created"
