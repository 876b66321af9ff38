"""The multi-step tool-use environment of DESIGN.md ("grpo"): queries, episodes and steps.

An episode starts from a ``TrainingQuery`` with an empty outcome state. Each step the policy
picks one action from the catalog (``tools.py``); the environment runs it against the state
(deterministically: the same query and actions always give the same states and results) and
records the step. The episode ends when the policy picks ``finish`` or after
``max_steps_per_trajectory`` steps. Its final state is the outcome fields plus two fields the
environment maintains: ``tools_used`` (successful calls, in order) and ``steps`` (actions taken,
``finish`` included), so an ``expected_outcome`` may also constrain those.

What the policy sees (``Episode.state_vector``) is the query plus a summary of the steps so far:
which tools have succeeded at least once, which tool was called last, and whether that call
failed. Those are the features of ``policy.py``.
"""
from __future__ import annotations

import copy
import datetime as dt
import math
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from trainhouse.core.errors import InvalidArgument
from trainhouse.core.grpo.tools import EFFECTS, FINISH, ToolSpec, _is_json_value

MAX_QUERY_CHARS = 10_000


def iso_now() -> str:
    """UTC wall-clock time, ISO 8601 with a Z suffix (the seed's timestamp form)."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class TrainingQuery:
    """Seed 003 TrainingQuery: a task prompt and the outcome that counts as solving it."""

    query: str
    expected_outcome: Mapping[str, Any]

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "expected_outcome": dict(self.expected_outcome)}

    @classmethod
    def parse(cls, raw: Any, where: str) -> "TrainingQuery":
        """Validate one query (a dict with ``query`` and ``expected_outcome``/``expectedOutcome``)."""
        if isinstance(raw, TrainingQuery):
            raw = raw.to_dict()
        if not isinstance(raw, Mapping):
            raise InvalidArgument(where, "must be an object {query, expected_outcome}")
        text = raw.get("query")
        if not isinstance(text, str) or not text.strip():
            raise InvalidArgument(f"{where}.query", "must be a non-empty string")
        if len(text) > MAX_QUERY_CHARS:
            raise InvalidArgument(f"{where}.query", f"must be at most {MAX_QUERY_CHARS} characters")
        key = "expected_outcome" if "expected_outcome" in raw else "expectedOutcome"
        expected = raw.get(key)
        if not isinstance(expected, Mapping) or not expected:
            raise InvalidArgument(f"{where}.{key}", "must be a non-empty object of expected state fields")
        for k, v in expected.items():
            if not isinstance(k, str) or not k:
                raise InvalidArgument(f"{where}.{key}", "field names must be non-empty strings")
            if not _is_json_value(v):
                raise InvalidArgument(f"{where}.{key}.{k}", "must be a JSON value (finite numbers only)")
        return cls(text, dict(expected))


def parse_queries(items: Any, where: str) -> list[TrainingQuery]:
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, (list, tuple)):
        raise InvalidArgument(where, "must be a list of {query, expected_outcome} objects")
    return [TrainingQuery.parse(q, f"{where}[{i}]") for i, q in enumerate(items)]


@dataclass
class Episode:
    """One trajectory in progress. ``outcome`` holds the tool-written fields only."""

    query: str
    n_tools: int                                   # tools besides finish
    outcome: dict[str, Any] = field(default_factory=dict)
    tools_used: list[str] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    succeeded: list[bool] = field(default_factory=list)
    done: bool = False
    finished: bool = False                         # ended by the finish action (not the step limit)
    started: float | None = None                   # perf_counter of the first step
    ended: float | None = None

    def __post_init__(self) -> None:
        self.called_ok = np.zeros(self.n_tools, dtype=np.float32)
        self.last_action = -1
        self.last_failed = False

    def state_vector(self) -> np.ndarray:
        """[called_ok (T) | last tool one-hot (T) | last call failed (1)], float32."""
        v = np.zeros(2 * self.n_tools + 1, dtype=np.float32)
        v[:self.n_tools] = self.called_ok
        if self.last_action >= 0:
            v[self.n_tools + self.last_action] = 1.0
        v[-1] = 1.0 if self.last_failed else 0.0
        return v

    def final_state(self) -> dict[str, Any]:
        state = dict(self.outcome)
        state["tools_used"] = list(self.tools_used)
        state["steps"] = len(self.steps)
        return state

    @property
    def execution_time_ms(self) -> float:
        if self.started is None or self.ended is None:
            return 0.0
        return (self.ended - self.started) * 1000.0


def state_dim(n_tools: int) -> int:
    """Length of ``Episode.state_vector`` for a catalog of ``n_tools`` tools besides finish."""
    return 2 * n_tools + 1


class ToolEnvironment:
    """Runs actions of a catalog (``finish`` last) for at most ``max_steps`` steps per episode."""

    def __init__(self, catalog: Sequence[ToolSpec], max_steps: int):
        if not catalog or catalog[-1].name != FINISH:
            raise ValueError("the catalog must end with the finish tool")
        self.catalog = tuple(catalog)
        self.names = [t.name for t in self.catalog]
        self.n_tools = len(self.catalog) - 1
        self.max_steps = int(max_steps)

    @property
    def n_actions(self) -> int:
        return len(self.catalog)

    def reset(self, query: str) -> Episode:
        return Episode(query=query, n_tools=self.n_tools)

    def _run_tool(self, tool: ToolSpec, episode: Episode) -> tuple[dict[str, Any], dict[str, Any]]:
        """(params, result) of calling ``tool``; applies its changes to ``episode.outcome``."""
        state = episode.outcome
        computed = EFFECTS[tool.effect][0](episode.query) if tool.effect else None
        params = dict(computed.params) if computed else {}
        missing = [f for f in tool.requires if not state.get(f)]
        if missing:
            return params, {"ok": False, "error": f"{tool.name} needs {', '.join(missing)} first"}
        if tool.requires_any and not any(state.get(f) for f in tool.requires_any):
            return params, {"ok": False, "error": f"{tool.name} needs one of {', '.join(tool.requires_any)} first"}
        if computed is not None and computed.error:
            return params, {"ok": False, "error": computed.error}
        changes: dict[str, Any] = {}
        for f in tool.clears:
            if f in state:
                del state[f]
                changes[f] = None
        for k, v in tool.sets.items():
            state[k] = copy.deepcopy(v) if isinstance(v, (dict, list)) else v
            changes[k] = state[k]
        if computed is not None:
            for k, v in computed.sets.items():
                state[k] = v
                changes[k] = v
        result: dict[str, Any] = {"ok": True, "changes": changes}
        if computed is not None and computed.output:
            result["output"] = dict(computed.output)
        return params, result

    def step(self, episode: Episode, action: int, timestamp: str | None = None) -> dict[str, Any]:
        """Apply ``action`` (an index into the catalog), record and return the step.

        ``timestamp`` (ISO 8601) is when the step started; rollouts pass the time at which the
        batched policy chose the actions of all running trajectories. Default: now.
        """
        if episode.done:
            raise ValueError("the episode has ended")
        t0 = time.perf_counter()
        if episode.started is None:
            episode.started = t0
        if timestamp is None:
            timestamp = iso_now()
        tool = self.catalog[action]
        observed = {"step": len(episode.steps), "outcome": dict(episode.outcome),
                    "tools_used": list(episode.tools_used),
                    "last_tool": self.names[episode.last_action] if episode.last_action >= 0 else None}
        if tool.ends_episode:
            params: dict[str, Any] = {}
            result: dict[str, Any] = {"ok": True, "finished": True}
            ok = True
            episode.finished = True
        else:
            params, result = self._run_tool(tool, episode)
            ok = bool(result["ok"])
            if ok:
                episode.tools_used.append(tool.name)
                episode.called_ok[action] = 1.0
            episode.last_action = action
            episode.last_failed = not ok
        episode.actions.append(action)
        episode.succeeded.append(ok)
        t1 = time.perf_counter()
        record = {"state": observed, "action": {"tool": tool.name, "params": params}, "result": result,
                  "timestamp": timestamp, "duration_ms": (t1 - t0) * 1000.0}
        episode.steps.append(record)
        if tool.ends_episode or len(episode.steps) >= self.max_steps:
            episode.done = True
        episode.ended = t1
        return record

    def run(self, query: str, actions: Sequence[int | str]) -> Episode:
        """Play a fixed action sequence (names or indices) until it or the episode ends: for tests,
        demonstrations and checking what a plan achieves."""
        episode = self.reset(query)
        for a in actions:
            if episode.done:
                break
            self.step(episode, self.names.index(a) if isinstance(a, str) else int(a))
        return episode


def values_match(expected: Any, actual: Any) -> bool:
    """Whether an outcome value matches its expectation.

    Numbers (not booleans) compare with ``math.isclose(rel_tol=1e-9, abs_tol=1e-9)``; strings,
    booleans and null exactly; lists element-wise with equal length; objects on the expected
    keys (extra actual keys are allowed, as for the top-level state).
    """
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return math.isclose(float(expected), float(actual), rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(k in actual and values_match(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, (list, tuple)):
        return (isinstance(actual, (list, tuple)) and len(expected) == len(actual)
                and all(values_match(e, a) for e, a in zip(expected, actual)))
    return expected == actual


def matched_fields(final_state: Mapping[str, Any], expected: Mapping[str, Any]) -> int:
    """How many fields of ``expected`` the final state matches (a missing field does not match)."""
    return sum(1 for k, v in expected.items() if k in final_state and values_match(v, final_state[k]))
