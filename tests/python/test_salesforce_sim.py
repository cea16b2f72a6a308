"""The Salesforce simulator driven by a real third-party client, simple-salesforce 1.12.10.

simple-salesforce builds every URL as https://<host>/..., and the sandbox serves plain HTTP on
loopback. The requests session handed to it therefore carries an adapter that sends each https
request to the sandbox over http, with the path and query untouched; everything else (OAuth
flows, URL building, paging through nextRecordsUrl, error mapping, session refresh on 401) is the
library's own code.
"""

import json
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / "target" / "debug" / "orglink-sandbox"
FIXTURES = ROOT / "tests" / "sandbox" / "tests" / "fixtures"
CONSUMER_KEY = "orglink-sandbox-consumer-key"
CONSUMER_SECRET = "orglink-sandbox-consumer-secret"
USERNAME = "integration@orglink.sandbox"
VERSION = "62.0"

ACME = "001D000000IRFmaIAH"
GLOBEX = "001D000000IomazIAB"


class LoopbackAdapter(requests.adapters.HTTPAdapter):
    """Sends https://any-host/path?query to the sandbox's http://127.0.0.1:PORT/path?query."""

    def __init__(self, base):
        super().__init__()
        self.base = base

    def send(self, request, **kwargs):
        parts = urlsplit(request.url)
        request.url = self.base + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().send(request, **kwargs)


def loopback_session(base):
    session = requests.Session()
    session.mount("https://", LoopbackAdapter(base))
    return session


@pytest.fixture(scope="module")
def sf_base():
    """A sandbox process of this module's own, started with the JWT test key."""
    proc = subprocess.Popen(
        [
            str(BINARY),
            "--salesforce-port", "0",
            "--zendesk-port", "0",
            "--salesforce-jwt-public-key", str(FIXTURES / "salesforce-jwt-test.pub.pem"),
            "--exit-on-stdin-eof",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        urls = json.loads(proc.stdout.readline())
        yield urls["salesforce"]
    finally:
        proc.stdin.close()
        proc.terminate()
        proc.wait(timeout=10)


def admin(base, what, body=None):
    if body is None:
        r = requests.get(f"{base}/_sandbox/{what}", timeout=30)
    else:
        r = requests.post(f"{base}/_sandbox/{what}", json=body, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def small_world():
    return {
        "salesforce": {
            "accounts": [
                {"Id": ACME[:15], "Name": "Acme", "Type": "Customer - Direct", "Zendesk_Org_ID__c": "42"},
                {"Id": GLOBEX, "Name": "Globex", "Type": "Prospect"},
            ]
        }
    }


@pytest.fixture
def base(sf_base):
    admin(sf_base, "reset", {})
    admin(sf_base, "scenario", small_world())
    return sf_base


def client_credentials_client(base):
    # A My Domain, as the client-credentials flow requires; the adapter sends it to the sandbox.
    return Salesforce(
        consumer_key=CONSUMER_KEY,
        consumer_secret=CONSUMER_SECRET,
        domain="orglink-sandbox.my",
        session=loopback_session(base),
        version=VERSION,
    )


def test_query_all_pages_past_2000_records(base):
    accounts = [
        {"Name": f"Customer {i:05}", "Type": "Customer - Direct", "IsDeleted": i % 13 == 0}
        for i in range(2600)
    ]
    admin(base, "scenario", {"salesforce": {"accounts": accounts}})
    live = [a for a in accounts if not a["IsDeleted"]]
    sf = client_credentials_client(base)

    result = sf.query_all("SELECT Id, Name FROM Account WHERE Type LIKE 'Customer%'")
    assert result["totalSize"] == len(live)
    assert result["done"] is True
    assert len(result["records"]) == len(live)
    assert len({r["Id"] for r in result["records"]}) == len(live)
    assert result["records"][0]["attributes"]["type"] == "Account"

    everything = sf.query_all("SELECT Id, IsDeleted FROM Account", include_deleted=True)
    assert len(everything["records"]) == len(accounts)
    assert sum(r["IsDeleted"] for r in everything["records"]) == len(accounts) - len(live)

    calls = admin(base, "calls")
    assert calls["sf.query_more"]["200"] >= 2
    assert sf.api_usage["api-usage"].used >= 4
    assert sf.api_usage["api-usage"].total == 100_000


def test_jwt_bearer_login_with_the_librarys_own_assertion(base):
    sf = Salesforce(
        username=USERNAME,
        consumer_key=CONSUMER_KEY,
        privatekey_file=str(FIXTURES / "salesforce-jwt-test.key"),
        domain="login",
        session=loopback_session(base),
        version=VERSION,
    )
    result = sf.query("SELECT Id, Name FROM Account ORDER BY Name")
    assert [r["Name"] for r in result["records"]] == ["Acme", "Globex"]


def test_account_update_and_get_write_only_what_was_sent(base):
    sf = client_credentials_client(base)
    before = sf.Account.get(GLOBEX[:15])
    status = sf.Account.update(GLOBEX, {"Zendesk_Org_ID__c": "9001", "Zendesk_Sync_Status__c": "Linked"})
    assert status == 204
    after = sf.Account.get(GLOBEX)
    assert after["Zendesk_Org_ID__c"] == "9001"
    assert after["SystemModstamp"] > before["SystemModstamp"]
    assert after["Name"] == before["Name"]

    writes = admin(base, "writes")
    assert len(writes) == 1
    assert writes[0]["id"] == GLOBEX
    assert set(writes[0]["fields"]) == {"Zendesk_Org_ID__c", "Zendesk_Sync_Status__c"}
    assert writes[0]["fields"]["Zendesk_Org_ID__c"] == {"old": None, "new": "9001"}

    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.Account.update(GLOBEX, {"Zendesk_Org_ID__c": "42"})
    assert err.value.content[0]["errorCode"] == "DUPLICATE_VALUE"


def test_composite_collection_update_reports_each_record(base):
    admin(base, "switches", {"validation_rules": {ACME: "Account is locked for audit"}})
    sf = client_credentials_client(base)
    results = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Account"}, "id": ACME, "Zendesk_Domain__c": "acme.com"},
                {"attributes": {"type": "Account"}, "id": GLOBEX, "Zendesk_Domain__c": "globex.com"},
            ],
        },
    )
    assert results[0]["success"] is False
    assert results[0]["errors"][0]["statusCode"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert results[1] == {"id": GLOBEX, "success": True, "errors": []}
    assert sf.Account.get(GLOBEX)["Zendesk_Domain__c"] == "globex.com"
    assert sf.Account.get(ACME)["Zendesk_Domain__c"] is None


def test_errors_surface_as_the_librarys_exceptions(base):
    sf = client_credentials_client(base)
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.query("SELECT Id FROM Account WHERE Name = 'a' AND Type = 'b' OR Type = 'c'")
    assert err.value.content[0]["errorCode"] == "MALFORMED_QUERY"
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.query("SELECT Id, Nope__c FROM Account")
    assert err.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get("001D000000XXXXX")

    admin(base, "switches", {"daily_api_limit": 1})
    with pytest.raises(SalesforceRefusedRequest) as err:
        sf.query("SELECT Id FROM Account")
    assert err.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_expired_sessions_are_refreshed_by_the_client(base):
    sf = client_credentials_client(base)
    admin(base, "switches", {"session_max_calls": 2})
    for _ in range(5):
        assert sf.query("SELECT Id FROM Account")["totalSize"] == 2
    calls = admin(base, "calls")
    assert calls["sf.query"]["401"] >= 2
    assert calls["sf.token"]["200"] >= 3
