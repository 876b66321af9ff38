"""REST Predict's fast path (gateway/predict_fast_path.py, docs/serving.md), on the real stack and
on both surfaces it serves (seed 000's /api/v1 and the canonical /v1 the SDK calls): what it
answers is exactly what the full route answers, a request is charged once whichever way it goes,
and whatever the fast path does not take reaches the route with its body intact.

A query string sends a request to the full route (the fast path takes none), which gives each
test the route's own answer to compare with."""
from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.gateway.conftest import assert_error, bearer, make_token, train_version

TEXTS = ["where is my parcel", "cancel my order please"]
SAME_HEADERS = ("content-type", "x-ratelimit-limit")
SEED, CANONICAL = "/api/v1/agents/{}/predict", "/v1/agents/{}/predict"
# Per surface: a one-text body, a body with every field the replica answers, and a 404's code.
BODIES = {SEED: ({"input": TEXTS[0]}, {"inputs": TEXTS, "topK": 2, "requestKey": "user-7"}, "AGENT_NOT_FOUND"),
          CANONICAL: ({"inputs": [TEXTS[0]]}, {"inputs": TEXTS, "top_k": 2, "request_key": "user-7"}, "not_found")}


@pytest.fixture(scope="module")
def client(stack) -> Iterator[httpx.Client]:  # noqa: ANN001
    """A client without credentials of its own (each call names its token)."""
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as http:
        yield http


@pytest.fixture(scope="module")
def admin_token(stack) -> str:  # noqa: ANN001
    return stack.admin_token


@pytest.fixture(scope="module")
def agent(admin_api: httpx.Client) -> str:
    name = f"fast-{uuid.uuid4().hex[:8]}"
    train_version(admin_api, name, 0)
    return name


def _taken(api: httpx.Client) -> dict[str, float]:
    """trainhouse_gateway_predict_fast_path by outcome, from /metrics."""
    text = api.get("/metrics").text
    return {m[0]: float(m[1]) for m in re.findall(
        r'trainhouse_gateway_predict_fast_path_total\{outcome="(\w+)"\} ([0-9.e+]+)', text)}


def _post(client: httpx.Client, token: str, agent: str, body: object, route: bool = False,
          content: bytes | None = None, surface: str = SEED) -> httpx.Response:
    url = surface.format(agent) + ("?route=1" if route else "")
    if content is not None:
        return client.post(url, content=content, headers={**bearer(token), "content-type": "application/json"})
    return client.post(url, json=body, headers=bearer(token))


def _fast(client: httpx.Client, admin_api: httpx.Client, token: str, agent: str, body: object,
          surface: str = SEED) -> httpx.Response:
    """A Predict the fast path answers (retried while the replica's feed catches up after training)."""
    for _ in range(100):
        before = _taken(admin_api).get("answered", 0.0)
        r = _post(client, token, agent, body, surface=surface)
        if _taken(admin_api).get("answered", 0.0) == before + 1:
            return r
    raise AssertionError("the fast path never answered")


def _answers(body: dict) -> dict:
    """The answer without what differs between two calls (prediction ids), in either surface's shape."""
    data = body.get("data", body)
    return {**data, "predictions": [{k: v for k, v in p.items() if k not in ("predictionId", "prediction_id")}
                                    for p in data["predictions"]]}


@pytest.mark.parametrize("surface", [SEED, CANONICAL])
def test_the_fast_path_answers_what_the_route_answers(client, admin_api, admin_token, agent, surface) -> None:
    for body in BODIES[surface][:2]:
        fast = _fast(client, admin_api, admin_token, agent, body, surface)
        before = _taken(admin_api)
        routed = _post(client, admin_token, agent, body, route=True, surface=surface)
        assert _taken(admin_api) == before, "a request with a query string is the route's"
        assert fast.status_code == routed.status_code == 200, (fast.text, routed.text)
        assert _answers(fast.json()) == _answers(routed.json())
        assert list(fast.json()) == list(routed.json())
        for name in SAME_HEADERS:
            assert fast.headers[name] == routed.headers[name], name
        assert fast.headers["x-request-id"].startswith("req-")
        predictions = fast.json().get("data", fast.json())["predictions"]
        assert len(predictions) == len(body.get("inputs", [1]))
        assert all(p.get("predictionId") or p.get("prediction_id") for p in predictions)
    # The request is labelled with the route's template in the HTTP metrics.
    template = re.escape(surface.format("{" + ("agentId" if surface == SEED else "agent_id") + "}"))
    assert re.search(r'trainhouse_gateway_http_request_duration_seconds_count\{[^}]*route="' + template
                     + r'"[^}]*status="200"', admin_api.get("/metrics").text)


@pytest.mark.parametrize("surface", [SEED, CANONICAL])
def test_each_request_is_charged_once_whichever_path_answers(client, admin_api, admin_token, agent, surface) -> None:
    token = make_token(client, admin_token, ["training:view"], rateLimitPerHour=1000)
    one, _, not_found = BODIES[surface]
    remaining = []
    r = _fast(client, admin_api, token, agent, one, surface)
    remaining.append(int(r.headers["x-ratelimit-remaining"]))
    remaining.append(int(_fast(client, admin_api, token, agent, one, surface).headers["x-ratelimit-remaining"]))
    # The route's answer, then a request the replica declines after the fast path charged it (an
    # agent it does not serve: refunded, then charged again by the route, which answers 404).
    remaining.append(int(_post(client, token, agent, one, route=True, surface=surface).headers["x-ratelimit-remaining"]))
    before = _taken(admin_api)
    missing = _post(client, token, f"nobody-{uuid.uuid4().hex[:6]}", one, surface=surface)
    assert missing.status_code == 404 and not_found in missing.text, missing.text
    assert _taken(admin_api).get("route", 0) == before.get("route", 0) + 1
    remaining.append(int(missing.headers["x-ratelimit-remaining"]))
    remaining.append(int(_fast(client, admin_api, token, agent, one, surface).headers["x-ratelimit-remaining"]))
    # _fast may have needed retries while the feed caught up: each retry is one more request.
    steps = [a - b for a, b in zip(remaining, remaining[1:])]
    assert steps[1:3] == [1, 1], remaining
    assert all(step >= 1 for step in steps), remaining


def test_a_spent_budget_is_refused_in_the_routes_shape(client, admin_api, admin_token, agent) -> None:
    for _ in range(5):  # a change of what serves elsewhere can leave the replica one update behind for a moment
        token = make_token(client, admin_token, ["training:view"], rateLimitPerHour=1)
        assert _post(client, token, agent, {"input": TEXTS[0]}).status_code == 200
        before = _taken(admin_api)
        fast = _post(client, token, agent, {"input": TEXTS[0]})
        after = _taken(admin_api)
        if after.get("refused", 0) == before.get("refused", 0) + 1:  # its 429 is the fast path's
            assert after.get("answered", 0) == before.get("answered", 0)  # a refusal is not an answer
            break
    else:
        raise AssertionError("the fast path never took the refused request")
    routed = _post(client, token, agent, {"input": TEXTS[0]}, route=True)
    for r in (fast, routed):
        assert_error(r, 429, "RATE_LIMIT_EXCEEDED")
    assert {k: v for k, v in fast.json()["error"].items() if k not in ("timestamp", "requestId")} == \
        {k: v for k, v in routed.json()["error"].items() if k not in ("timestamp", "requestId")}
    # (the budget refills continuously: a second between the two calls moves Retry-After by one)
    assert abs(int(fast.headers["retry-after"]) - int(routed.headers["retry-after"])) <= 1
    assert fast.headers["x-ratelimit-remaining"] == routed.headers["x-ratelimit-remaining"] == "0"


@pytest.mark.parametrize("content, status, code, field", [
    (b'{"input": 5}', 400, "INVALID_CONFIG", "input"),
    (b'{"input": "a", "inputs": ["b"]}', 400, "INVALID_CONFIG", "input"),
    (b'{"input": ', 400, "INVALID_CONFIG", "body"),
    (b'[1, 2]', 400, "INVALID_CONFIG", None),
])
def test_what_the_fast_path_does_not_take_reaches_the_route_whole(client, admin_api, admin_token, agent,
                                                                   content, status, code, field) -> None:
    token = make_token(client, admin_token, ["training:view"], rateLimitPerHour=1000)
    before = _taken(admin_api)
    first = _post(client, token, agent, None, content=content)
    assert _taken(admin_api).get("route", 0) == before.get("route", 0) + 1
    assert_error(first, status, code, field)
    # The route read the replayed body (its error names the field), and charged it once.
    second = _post(client, token, agent, None, content=content)
    assert int(first.headers["x-ratelimit-remaining"]) - int(second.headers["x-ratelimit-remaining"]) == 1


def test_callers_the_route_refuses_are_refused_as_before(client, admin_api, admin_token, agent) -> None:
    assert_error(_post(client, "th_not_a_token", agent, {"input": "x"}), 401, "UNAUTHORIZED")
    no_scope = make_token(client, admin_token, ["data:export"])
    assert_error(_post(client, no_scope, agent, {"input": "x"}), 403, "FORBIDDEN")
    r = client.post(f"/api/v1/agents/{agent}/predict", json={"input": "x"})
    assert_error(r, 401, "UNAUTHORIZED")
    # Another account's caller never sees the agent, on either path.
    other = make_token(client, admin_token, ["training:view"], account=f"acct-{uuid.uuid4().hex[:6]}")
    assert_error(_post(client, other, agent, {"input": "x"}), 404, "AGENT_NOT_FOUND")
