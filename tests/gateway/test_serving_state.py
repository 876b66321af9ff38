"""What production serves changes only when someone decides (issue 13), through the gateway:
the first version serves, later ones wait; every version says what it does for traffic and why;
aliases and tags are set, moved, listed and deleted over REST, and Predict follows '@alias'."""
from __future__ import annotations

import uuid

import httpx

import pytest

from tests.gateway.conftest import assert_error, train_version


@pytest.fixture(scope="module")
def pair(admin_api: httpx.Client) -> tuple[str, str, str]:
    """An agent of its own with two versions, trained one after the other: (agent, first, second)."""
    agent = f"serving-{uuid.uuid4().hex[:8]}"
    return agent, train_version(admin_api, agent, 0), train_version(admin_api, agent, 1)


def _versions(api: httpx.Client, agent: str) -> dict[str, dict]:
    data = api.get(f"/api/v1/training/models/{agent}/versions", params={"limit": 100}).json()["data"]
    return {v["versionId"]: v for v in data["versions"]}


def _predict(api: httpx.Client, agent: str, **body: object) -> httpx.Response:
    return api.post(f"/api/v1/agents/{agent}/predict", json={"input": "where is my parcel", **body})


def test_the_first_version_serves_and_later_ones_wait_for_a_decision(admin_api: httpx.Client, pair) -> None:
    agent, first, second = pair
    versions = _versions(admin_api, agent)
    assert versions[first]["serving"] == "serving" and versions[first]["status"] == "deployed"
    assert "first version" in versions[first]["servingReason"]
    assert versions[second]["serving"] == "registered" and versions[second]["status"] == "registered"
    assert _predict(admin_api, agent).json()["data"]["versionId"] == first
    record = admin_api.get(f"/api/v1/agents/{agent}").json()["data"]
    assert record["activeVersionId"] == first and record["serveFirstVersion"] is True
    # Seed 004's `active` says the same.
    models = admin_api.get("/api/training/models").json()["models"]
    active = {m["versionId"]: m["active"] for m in models if m["agentId"] == agent}
    assert active == {first: True, second: False}


def test_aliases_and_tags_over_rest_and_predict_by_alias(admin_api: httpx.Client, pair) -> None:
    agent, first, second = pair
    base = f"/api/v1/training/models/{agent}"
    r = admin_api.put(f"{base}/aliases/challenger", json={"versionId": second})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["version"]["versionId"] == second and "previousVersionId" not in r.json()["data"]
    # '@challenger' pins the version the alias names; production still serves the first.
    assert _predict(admin_api, agent, versionId="@challenger").json()["data"]["versionId"] == second
    assert _predict(admin_api, agent).json()["data"]["versionId"] == first
    # Moving the alias answers what it named before, and Predict follows at once.
    moved = admin_api.put(f"{base}/aliases/challenger", json={"versionId": first}).json()["data"]
    assert moved["previousVersionId"] == second
    assert _predict(admin_api, agent, versionId="@challenger").json()["data"]["versionId"] == first
    listed = admin_api.get(f"{base}/aliases").json()["data"]["aliases"]
    assert [(a["alias"], a["versionId"]) for a in listed] == [("challenger", first)]
    assert _versions(admin_api, agent)[first]["aliases"] == ["challenger"]

    tagged = admin_api.patch(f"{base}/versions/{second}/tags", json={"set": {"reviewed": "yes", "team": "ml"}})
    assert tagged.status_code == 200 and tagged.json()["data"]["tags"] == {"reviewed": "yes", "team": "ml"}
    untagged = admin_api.patch(f"{base}/versions/{second}/tags", json={"remove": ["team"]}).json()["data"]
    assert untagged["tags"] == {"reviewed": "yes"}

    deleted = admin_api.delete(f"{base}/aliases/challenger").json()["data"]
    assert deleted == {"alias": "challenger", "versionId": first, "deleted": True}
    assert_error(_predict(admin_api, agent, versionId="@challenger"), 404, "NOT_FOUND")
    assert_error(admin_api.delete(f"{base}/aliases/challenger"), 404, "NOT_FOUND")
    assert_error(admin_api.put(f"{base}/aliases/latest", json={"versionId": first}), 400, "INVALID_CONFIG", "alias")
    assert_error(admin_api.put(f"{base}/aliases/Bad!", json={"versionId": first}), 400, "INVALID_CONFIG", "alias")
    assert_error(_predict(admin_api, agent, versionId="@"), 400, "INVALID_CONFIG", "versionId")


def test_an_agent_that_does_not_serve_its_first_version_serves_nothing_until_deployed(
        admin_api: httpx.Client) -> None:
    agent = f"held-{uuid.uuid4().hex[:8]}"
    created = admin_api.post("/api/v1/agents", json={"agentId": agent, "serveFirstVersion": False})
    assert created.status_code == 201 and created.json()["data"]["serveFirstVersion"] is False
    version = train_version(admin_api, agent, 2)
    v = _versions(admin_api, agent)[version]
    assert v["serving"] == "registered" and v["status"] == "registered"
    assert_error(_predict(admin_api, agent), 409, "CONFLICT")
    deployed = admin_api.post(f"/api/v1/training/models/{agent}/versions/{version}/deploy", json={})
    assert deployed.status_code == 200, deployed.text
    assert _predict(admin_api, agent).json()["data"]["versionId"] == version
    assert _versions(admin_api, agent)[version]["serving"] == "serving"
    # The setting can be switched back on (audited); it is read on the next registration.
    patched = admin_api.patch(f"/api/v1/agents/{agent}", json={"serveFirstVersion": True})
    assert patched.status_code == 200 and patched.json()["data"]["serveFirstVersion"] is True
    assert_error(admin_api.patch("/api/v1/agents/nobody-here", json={"name": "x"}), 404, "AGENT_NOT_FOUND")
