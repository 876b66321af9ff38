"""The user's own tool server as a GRPO environment, over a small HTTP JSON protocol.

Protocol (all JSON; every request carries ``Authorization: Bearer <token>`` when the job names a
``secret_env``; full text in docs/grpo_environments.md):

* ``GET  {url}/tools`` -> ``{"tools": [{"name", "description", "arguments": <JSON schema>,
  "outputs": [state fields it may write]}]}``; read once when the environment is built;
* ``POST {url}/episodes`` ``{"query"}`` -> ``{"episode_id", "state"}``; sent at an episode's
  first tool call (a trajectory that finishes at once never opens one);
* ``POST {url}/episodes/{episode_id}/calls`` ``{"tool", "arguments"}`` ->
  ``{"result", "error"?, "state", "done"?}``: ``state`` (an object) becomes the episode's outcome
  state, which the reward compares with ``expected_outcome``; a non-empty ``error`` marks the call
  failed; ``done: true`` ends the episode.

Arguments come from a documented parser: ``query`` -> the query text, a property named like a
field of the current state -> that field's value; other properties of the tool's schema are not
filled (the server parses them from the query itself).

Bounds: each request has ``timeout_s``; an episode makes at most ``max_calls`` requests (its
start included), later calls fail without a request. A timeout, a refused connection, a non-2xx
status or a malformed answer is an OBSERVATION: the call fails with that error, the state is
unchanged, training goes on. Only ``GET /tools`` failing stops the job (there is no action set).

The bearer token is read from the worker's environment variable named by ``secret_env`` when
the environment is built; it is sent only in the header, and any occurrence of it in what the
server returns is replaced by "[redacted]" before it enters a trajectory. It travels to Ray
workers inside the pickled environment (task arguments, in memory), never into the job config,
checkpoints, logs or trajectories.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any, Mapping

from trainhouse.core.errors import FailedPrecondition, InvalidArgument
from trainhouse.core.grpo.environment import Episode, ToolEnvironment
from trainhouse.core.grpo.environments.spec import EnvironmentSpec, GraderSpec
from trainhouse.core.grpo.tools import DEFAULT_TOOLS, RESERVED_FIELDS, ToolSpec, _is_json_value, parse_tool

MAX_RESPONSE_BYTES = 1 << 20
REDACTED = "[redacted]"


def read_secret(secret_env: str | None, where: str) -> str | None:
    """The bearer token from the variable named ``secret_env`` (None when none is named)."""
    if not secret_env:
        return None
    value = os.environ.get(secret_env)
    if not value:
        raise InvalidArgument(f"{where}.secret_env", f"environment variable {secret_env} is not set (or empty) in "
                                                     "this process (the training worker; the evaluation service "
                                                     "too, to evaluate the job)")
    return value


class _Client:
    """httpx with the job's bounds and header; rebuilt lazily after pickling (Ray)."""

    def __init__(self, timeout_s: float, secret: str | None):
        self.timeout_s = timeout_s
        self._secret = secret
        self._http: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"timeout_s": self.timeout_s, "_secret": self._secret, "_http": None}

    def __repr__(self) -> str:  # never shows the token
        return f"_Client(timeout_s={self.timeout_s}, auth={'bearer' if self._secret else 'none'})"

    def request(self, method: str, url: str, body: Any = None) -> Any:
        """The decoded JSON answer; raises RuntimeError with a token-free message on any failure."""
        import httpx

        if self._http is None:
            headers = {"Authorization": f"Bearer {self._secret}"} if self._secret else {}
            self._http = httpx.Client(timeout=self.timeout_s, headers=headers, follow_redirects=False)
        try:
            response = self._http.request(method, url, json=body)
        except httpx.TimeoutException:
            raise RuntimeError(f"{method} {url} timed out after {self.timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise RuntimeError(f"{method} {url} failed: {type(exc).__name__}") from None
        if len(response.content) > MAX_RESPONSE_BYTES:
            raise RuntimeError(f"{method} {url}: answer larger than {MAX_RESPONSE_BYTES} bytes")
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"{method} {url} answered HTTP {response.status_code}: "
                               f"{self.redact(response.text[:300])}")
        try:
            return response.json()
        except ValueError:
            raise RuntimeError(f"{method} {url}: the answer is not JSON") from None

    def redact(self, value: Any) -> Any:
        """``value`` with every occurrence of the token replaced (strings, lists, objects)."""
        if not self._secret:
            return value
        if isinstance(value, str):
            return value.replace(self._secret, REDACTED)
        if isinstance(value, list):
            return [self.redact(v) for v in value]
        if isinstance(value, dict):
            return {self.redact(k): self.redact(v) for k, v in value.items()}
        return value


class HttpEnvironment(ToolEnvironment):
    kind = "http"

    def __init__(self, spec: EnvironmentSpec, max_steps: int, where: str = "environment"):
        self.spec = spec
        self.base = spec.url or ""
        self.client = _Client(spec.timeout_s, read_secret(spec.secret_env, where))
        try:
            listing = self.client.request("GET", f"{self.base}/tools")
        except RuntimeError as exc:
            raise FailedPrecondition(f"the tool server's tool list is unavailable: {exc}", field=f"{where}.url") from None
        super().__init__(self._catalog(listing, where), max_steps)
        self.parallel_calls = spec.parallel_calls

    @staticmethod
    def _catalog(listing: Any, where: str) -> tuple[ToolSpec, ...]:
        tools = listing.get("tools") if isinstance(listing, Mapping) else None
        if not isinstance(tools, list) or not tools:
            raise FailedPrecondition("GET /tools must answer {\"tools\": [{name, description, arguments}, ...]} "
                                     "with at least one tool", field=f"{where}.url")
        out = []
        for i, raw in enumerate(tools):
            if not isinstance(raw, Mapping):
                raise FailedPrecondition(f"GET /tools: tools[{i}] is not an object", field=f"{where}.url")
            try:
                spec = parse_tool({k: raw[k] for k in ("name", "description", "arguments", "outputs") if k in raw},
                                  f"tools[{i}]")
            except InvalidArgument as exc:
                raise FailedPrecondition(f"GET /tools: {exc.field}: {exc.message}", field=f"{where}.url") from None
            if spec.name == DEFAULT_TOOLS[-1].name:
                continue  # finish is the platform's
            out.append(spec)
        if len({t.name for t in out}) != len(out):
            raise FailedPrecondition("GET /tools lists a tool name twice", field=f"{where}.url")
        return tuple(out) + (DEFAULT_TOOLS[-1],)

    def arguments(self, tool: ToolSpec, episode: Episode) -> dict[str, Any]:
        """The call's arguments: ``query`` and the properties named like current state fields."""
        props = (tool.arguments or {}).get("properties") if tool.arguments else None
        names = list(props) if isinstance(props, Mapping) else ["query"]
        args: dict[str, Any] = {}
        for name in names:
            if name == "query":
                args["query"] = episode.query
            elif name in episode.outcome:
                args[name] = episode.outcome[name]
        return args

    def _request(self, episode: Episode, method: str, path: str, body: Any) -> Any:
        calls = episode.env_data.get("requests", 0)
        if calls >= self.spec.max_calls:
            raise RuntimeError(f"max_calls ({self.spec.max_calls}) requests per episode reached")
        episode.env_data["requests"] = calls + 1
        return self.client.request(method, f"{self.base}{path}", body)

    def _state(self, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, Mapping) or not _is_json_value(raw):
            raise RuntimeError("the answer's state is not a JSON object")
        return {k: v for k, v in self.client.redact(dict(raw)).items() if k not in RESERVED_FIELDS}

    def _run_tool(self, tool: ToolSpec, episode: Episode) -> tuple[dict[str, Any], dict[str, Any]]:
        args = self.arguments(tool, episode)
        t0 = time.perf_counter()
        try:
            if "episode_id" not in episode.env_data:
                opened = self._request(episode, "POST", "/episodes", {"query": episode.query})
                eid = opened.get("episode_id") if isinstance(opened, Mapping) else None
                if not isinstance(eid, (str, int)) or isinstance(eid, bool) or not str(eid).strip():
                    raise RuntimeError("POST /episodes did not answer an episode_id")
                episode.env_data["episode_id"] = str(eid)
                episode.outcome.clear()
                episode.outcome.update(self._state(opened.get("state", {})))
            eid = episode.env_data["episode_id"]
            answer = self._request(episode, "POST", f"/episodes/{eid}/calls", {"tool": tool.name, "arguments": args})
            if not isinstance(answer, Mapping):
                raise RuntimeError("the call's answer is not a JSON object")
            state = self._state(answer.get("state", {}))
        except RuntimeError as exc:
            return args, {"ok": False, "error": self.client.redact(str(exc)),
                          "server_ms": (time.perf_counter() - t0) * 1000.0}
        result = self.client.redact(answer.get("result"))
        error = answer.get("error")
        before = dict(episode.outcome)
        episode.outcome.clear()
        episode.outcome.update(state)
        changes = {k: v for k, v in state.items() if before.get(k, object()) != v}
        changes.update({k: None for k in before if k not in state})
        if answer.get("done") is True:
            episode.env_data["server_done"] = True
        out: dict[str, Any] = {"ok": not error, "output": result if _is_json_value(result) else repr(result)[:500],
                               "changes": changes, "server_ms": (time.perf_counter() - t0) * 1000.0}
        if error:
            out["error"] = self.client.redact(str(error))[:1000]
        return args, out

    def step(self, episode: Episode, action: int, timestamp: str | None = None) -> dict[str, Any]:
        record = super().step(episode, action, timestamp)
        if episode.env_data.get("server_done"):
            episode.done = True
        return record


class GraderReward:
    """A reward function that asks the user's grader: ``POST {url}`` with {query, expected_outcome,
    final_state, steps} -> {"reward": number}. Same bounds and bearer handling as the tool server.
    A grader that fails twice in a row for one episode fails the job (FailedPrecondition): scoring
    it 0 instead would silently train on wrong rewards."""

    def __init__(self, spec: GraderSpec, where: str = "grader"):
        self.spec = spec
        self.client = _Client(spec.timeout_s, read_secret(spec.secret_env, where))

    def __call__(self, inp: Any) -> float:
        body = {"query": inp.query, "expected_outcome": dict(inp.expected_outcome),
                "final_state": json.loads(json.dumps(dict(inp.final_state), default=str)), "steps": inp.steps}
        last = ""
        for _ in range(2):
            try:
                answer = self.client.request("POST", self.spec.url, body)
            except RuntimeError as exc:
                last = str(exc)
                continue
            reward = answer.get("reward") if isinstance(answer, Mapping) else None
            if isinstance(reward, bool) or not isinstance(reward, (int, float)):
                last = "the grader's answer has no numeric reward"
                continue
            return float(reward)
        raise FailedPrecondition(f"the grader could not score an episode: {last}", field="grader.url")
