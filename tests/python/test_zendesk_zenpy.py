"""zenpy 2.0.57, a widely used third-party Zendesk client, works against the sandbox.

zenpy builds `https://{subdomain}.zendesk.com`; its supported overrides are the environment
variables ZENPY_FORCE_NETLOC and ZENPY_FORCE_SCHEME (zenpy/lib/api.py `_build_url`, `base_url`).
"""

from urllib.parse import urlsplit

import pytest
from zenpy import Zenpy
from zenpy.lib.api_objects import Organization
from zenpy.lib.exception import APIException


@pytest.fixture
def client(zendesk, monkeypatch):
    monkeypatch.setenv("ZENPY_FORCE_NETLOC", urlsplit(zendesk.url).netloc)
    monkeypatch.setenv("ZENPY_FORCE_SCHEME", "http")
    return Zenpy(subdomain=zendesk.subdomain, email=zendesk.email, token=zendesk.token, disable_cache=True)


def test_create_show_search_update(client, zendesk):
    created = client.organizations.create(Organization(name="Zenpy Co", external_id="0015g00000ZenpyAAA",
                                                       domain_names=["zenpy.example"]))
    assert created.id and created.name == "Zenpy Co"
    shown = client.organizations(id=created.id)
    assert shown.external_id == "0015g00000ZenpyAAA"
    # By external id, case-insensitively (zenpy calls show_many?external_ids=).
    found = list(client.organizations(external_id="0015G00000ZENPYAAA"))
    assert [o.id for o in found] == [created.id]
    # (zenpy's organizations.external() appends "?include=..." to the external id it sends to
    # /organizations/search, so it can't find anything on real Zendesk either: not used.)
    shown.notes = "updated by zenpy"
    client.organizations.update(shown)
    assert client.organizations(id=created.id).notes == "updated by zenpy"


def test_duplicate_name_is_a_422(client):
    client.organizations.create(Organization(name="Twice"))
    with pytest.raises(APIException) as err:
        client.organizations.create(Organization(name="Twice"))
    assert err.value.response.status_code == 422
    assert err.value.response.json()["details"]["name"][0]["error"] == "DuplicateValue"


def test_429_then_a_successful_retry(client, zendesk):
    org = client.organizations.create(Organization(name="Limited"))
    # A one-second window of 2 requests: the third waits out Retry-After (1 s) and succeeds.
    zendesk.switches(rate_limit_per_minute=2, rate_window_ms=1000)
    for _ in range(3):
        assert client.organizations(id=org.id).name == "Limited"
    calls = zendesk.admin_get("calls")["zd.org_show"]
    assert calls.get("429", 0) >= 1
    assert calls["200"] == 3
