"""The SDK's retry policy, backoff and SSE parsing: pure functions, no network."""
from __future__ import annotations

import httpx
import pytest

from trainhouse.sdk._base import Call, delay_s, settings, should_retry
from trainhouse.sdk._errors import ConflictError, InternalServerError, NotFoundError, status_error
from trainhouse.sdk._streaming import _Parser


def response(status: int, body: dict | None = None, headers: dict | None = None) -> httpx.Response:
    return httpx.Response(status, json=body or {}, headers=headers or {})


def in_progress() -> httpx.Response:
    return response(409, {"error": {"code": "request_in_progress", "message": "m"}})


def test_which_answers_are_retried() -> None:
    get, post = Call("GET", "/v1/jobs").prepared(), Call("POST", "/v1/jobs/j/cancel").prepared()
    create = Call("POST", "/v1/jobs", create=True).prepared()
    assert create.headers["Idempotency-Key"].startswith("sdk-") and create.repeatable and not post.repeatable
    for status in (408, 429, 500, 502, 503, 504):
        assert should_retry(post, response(status))
    for status in (400, 401, 403, 404, 413, 422):
        assert not should_retry(get, response(status))
    assert should_retry(get, None)  # no answer at all (connection error)
    assert should_retry(create, in_progress()) and should_retry(get, in_progress())
    assert not should_retry(post, in_progress())  # not safe to repeat
    reused = response(409, {"error": {"code": "idempotency_key_reused", "message": "m"}})
    assert not should_retry(create, reused)


def test_backoff_grows_and_retry_after_wins() -> None:
    waits = [delay_s(n, None) for n in range(6)]
    assert 0.375 <= waits[0] <= 0.625 and all(w <= 8.0 * 1.25 for w in waits)
    assert waits[3] > waits[0]
    assert delay_s(0, response(429, headers={"Retry-After": "7"})) == 7.0
    assert delay_s(0, response(429, headers={"Retry-After": "100000"})) == 60.0  # capped
    assert 0.375 <= delay_s(0, response(503, headers={"Retry-After": "soon"})) <= 0.625


def test_errors_carry_the_servers_code_and_request_id() -> None:
    err = status_error(404, {"error": {"code": "not_found", "message": "no job", "param": "job_id",
                                       "request_id": "req-1"}}, "req-header")
    assert isinstance(err, NotFoundError) and (err.code, err.param, err.request_id) == ("not_found", "job_id", "req-1")
    assert isinstance(status_error(409, {"error": {"code": "conflict", "message": "x"}}, None), ConflictError)
    proxy = status_error(502, "<html>bad gateway</html>", "req-2")
    assert isinstance(proxy, InternalServerError) and proxy.code == "http_502" and proxy.request_id == "req-2"


def test_sse_frames_are_parsed_across_lines_and_comments() -> None:
    parser = _Parser()
    lines = ["retry: 2000", "", ": keep-alive", "", "id: 7", "event: epoch", 'data: {"a":', 'data: 1}', ""]
    frames = [f for f in (parser.feed(line) for line in lines) if f is not None]
    assert frames == [("epoch", '{"a":\n1}', "7")]


def test_settings_come_from_arguments_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINHOUSE_URL", "http://gw:9/")
    monkeypatch.setenv("TRAINHOUSE_TOKEN", "th_env")
    assert settings(None, None) == ("http://gw:9", "th_env")
    assert settings("https://other", "th_arg") == ("https://other", "th_arg")
    with pytest.raises(ValueError):
        settings("gw:9", None)
