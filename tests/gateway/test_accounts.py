"""Accounts isolate (issue 15, item 1), seen through the gateway: the cases the issue reported.

Two accounts' tokens and the admin token. Another account's job, dataset or agent answers exactly as
a made-up id does (404 in the surface's shape), lists leave it out, and the signed download link is
issued only to a caller who may export, under its own account. Owner and admin are allowed the same
calls. The services enforce this (tests/services/test_job_isolation.py and the data and registry
isolation tests check the same rules over gRPC without the gateway).
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.gateway.conftest import bearer, make_token, wait_terminal
from tests.intents import make_examples

TRAIN = "/api/v1/training/train-agent"
DATASETS = "/api/v1/training/datasets"
ALL_BUT_ADMIN = ["training:start", "training:view", "training:cancel", "training:evaluate", "data:generate",
                 "data:export", "models:deploy"]


@pytest.fixture(scope="module")
def client(stack) -> Iterator[httpx.Client]:  # noqa: ANN001
    with httpx.Client(base_url=stack.gateway_url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def accounts(stack, client: httpx.Client) -> dict[str, dict[str, str]]:  # noqa: ANN001
    a, b = f"acct-a-{uuid.uuid4().hex[:6]}", f"acct-b-{uuid.uuid4().hex[:6]}"
    return {
        "owner": bearer(make_token(client, stack.admin_token, ALL_BUT_ADMIN, account=a)),
        "other_viewer": bearer(make_token(client, stack.admin_token, ["training:view"], account=b)),
        "other_canceller": bearer(make_token(client, stack.admin_token, ["training:view", "training:cancel"],
                                             account=b)),
        "other_full": bearer(make_token(client, stack.admin_token, ALL_BUT_ADMIN, account=b)),
        "owner_viewer": bearer(make_token(client, stack.admin_token, ["training:view"], account=a)),
        "admin": bearer(stack.admin_token),
    }


@pytest.fixture(scope="module")
def owned(client: httpx.Client, accounts: dict[str, dict[str, str]]) -> dict[str, str]:
    """A finished job and a dataset of the owner's account."""
    agent = f"iso-agent-{uuid.uuid4().hex[:6]}"
    r = client.post(TRAIN, headers=accounts["owner"],
                    json={"agentId": agent, "examples": make_examples(30), "config": {"method": "few_shot"}})
    assert r.status_code == 200, r.text
    job_id = r.json()["data"]["trainingJobId"]
    with httpx.Client(base_url=str(client.base_url), headers=accounts["owner"], timeout=60) as mine:
        wait_terminal(mine, [job_id])
    dataset_id = f"iso-ds-{uuid.uuid4().hex[:6]}"
    r = client.post(DATASETS, headers=accounts["owner"], json={"datasetId": dataset_id, "examples": make_examples(12)})
    assert r.status_code == 201, r.text
    return {"job": job_id, "agent": agent, "dataset": dataset_id}


def _same_as_missing(client: httpx.Client, headers: dict[str, str], path: str, real: str, method: str = "GET") -> None:
    """`path` with the real id answers exactly like `path` with a made-up id (status, code, message)."""
    fake = real[:-4] + "zzzz"
    got = client.request(method, path.format(real), headers=headers)
    missing = client.request(method, path.format(fake), headers=headers)
    assert got.status_code == missing.status_code == 404, (got.text, missing.text)
    g, m = got.json()["error"], missing.json()["error"]
    assert g["code"] == m["code"] and g["message"].replace(real, fake) == m["message"], (g, m)


def test_another_accounts_job_is_not_found_for_reads_and_cancel(client, accounts, owned) -> None:
    for who in ("other_viewer", "other_full"):
        _same_as_missing(client, accounts[who], TRAIN + "/{}", owned["job"])
        _same_as_missing(client, accounts[who], TRAIN + "/{}/metrics", owned["job"])
        _same_as_missing(client, accounts[who], TRAIN + "/{}/checkpoints", owned["job"])
        _same_as_missing(client, accounts[who], TRAIN + "/{}/events", owned["job"])
    _same_as_missing(client, accounts["other_canceller"], TRAIN + "/{}/stop", owned["job"], method="POST")
    # Seed 004's job routes too.
    r = client.get(f"/api/training/jobs/{owned['job']}", headers=accounts["other_viewer"])
    assert r.status_code == 404, r.text


def test_lists_leave_out_another_accounts_resources(client, accounts, owned) -> None:
    jobs = client.get("/api/training/jobs", headers=accounts["other_viewer"], params={"limit": 1000})
    assert jobs.status_code == 200, jobs.text
    assert owned["job"] not in jobs.text
    mine = client.get("/api/training/jobs", headers=accounts["owner_viewer"], params={"limit": 1000})
    assert owned["job"] in mine.text
    agents = client.get("/api/v1/agents", headers=accounts["other_viewer"], params={"limit": 100})
    assert agents.status_code == 200 and owned["agent"] not in agents.text
    datasets = client.get(DATASETS, headers=accounts["other_viewer"], params={"limit": 100})
    assert datasets.status_code == 200 and owned["dataset"] not in datasets.text
    assert owned["dataset"] in client.get(DATASETS, headers=accounts["owner"], params={"limit": 100}).text


def test_owner_and_admin_keep_every_call(client, accounts, owned) -> None:
    for who in ("owner_viewer", "admin"):
        assert client.get(f"{TRAIN}/{owned['job']}", headers=accounts[who]).status_code == 200
        assert client.get(f"{TRAIN}/{owned['job']}/metrics", headers=accounts[who]).status_code == 200
        assert client.get(f"/api/v1/agents/{owned['agent']}", headers=accounts[who]).status_code == 200
        assert client.get(f"{DATASETS}/{owned['dataset']}", headers=accounts[who]).status_code == 200
    assert owned["job"] in client.get("/api/training/jobs", headers=accounts["admin"], params={"limit": 1000}).text


def test_another_accounts_agent_and_dataset_are_not_found(client, accounts, owned) -> None:
    _same_as_missing(client, accounts["other_full"], "/api/v1/agents/{}", owned["agent"])
    _same_as_missing(client, accounts["other_full"], DATASETS + "/{}", owned["dataset"])
    _same_as_missing(client, accounts["other_full"], DATASETS + "/{}/download", owned["dataset"])


def test_download_links_carry_account_and_scope(client, accounts, owned) -> None:
    # A caller without data:export gets no link at all.
    r = client.get(f"{DATASETS}/{owned['dataset']}", headers=accounts["owner_viewer"])
    assert r.status_code == 200 and r.json()["data"].get("downloadUrl") is None
    # The owner's link works without a token and reads the dataset.
    link = client.get(f"{DATASETS}/{owned['dataset']}", headers=accounts["owner"]).json()["data"]["downloadUrl"]
    parts = urlsplit(link)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["scope"] == "data:export" and query["account"].startswith("acct-a-")
    with httpx.Client(timeout=30) as anonymous:
        assert anonymous.get(link).status_code == 200
        # Re-pointed at another account, or widened to another scope, the signature no longer holds.
        for change in ({"account": "default"}, {"scope": "admin"}):
            forged = f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode({**query, **change})}"
            assert anonymous.get(forged).status_code == 401
