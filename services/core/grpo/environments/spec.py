"""What a GRPO job says about its environment, validated at the edge (no I/O, no heavy imports).

``GRPOConfig.environment`` is one of:

* ``"simulated"`` (the default): the declarative flag simulator of ``grpo/tools.py``; kept for the
  jobs and tests written against it. Nothing is executed.
* ``"builtin"`` or ``{"type": "builtin", ...}``: the reference environment of ``builtin.py`` whose
  tools do real work (calculator, units, dates, a DuckDB lookup, a sandboxed code runner). Options:
  ``code_timeout_s`` (wall time of one code run, 0.1..60, default 5), ``code_cpu_s`` (RLIMIT_CPU,
  1..60, default 2), ``code_memory_mb`` (RLIMIT_AS, 64..4096, default 512), ``cache_code_runs``
  (default false: every ``code_runner`` call spawns and measures a fresh subprocess; true: the first
  measured run of an (implementation, task) pair is reused for the rest of the job, which is much
  faster and makes ``execution_time_ms`` the same within the job), ``parallel_calls`` (below).
* ``{"type": "http", "url": ..., "secret_env": ..., "timeout_s": ..., "max_calls": ...}``: the
  user's tool server, protocol in docs/grpo_environments.md. ``secret_env`` NAMES the environment
  variable of the training worker that holds the bearer token: the token itself never enters the
  config, the job record, logs or trajectories. A URL with credentials in it is refused for the same
  reason.

``parallel_calls`` (builtin and http, 1..32, default 4): how many tool calls of one rollout round
(the trajectories' steps that are chosen together) run at once, on threads of the process doing
the rollout. Episodes are independent, so this changes the wall time, not the trajectories.

``GRPOConfig.grader`` (optional) ``{"url": ..., "secret_env": ..., "timeout_s": ...}`` is a user
endpoint that scores a finished episode instead of the reward function.
"""
from __future__ import annotations

import math
import re
import urllib.parse
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from trainhouse.core.errors import InvalidArgument

ENVIRONMENT_TYPES = ("simulated", "builtin", "http")
_ENV_VAR_RE = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
COMPARISONS = ("exact", "at_most", "at_least")
# Applied unless the job says otherwise: a measured duration in an expected outcome is a budget.
DEFAULT_COMPARISONS: dict[str, Any] = {"execution_time_ms": "at_most"}


@dataclass(frozen=True)
class EnvironmentSpec:
    type: str = "simulated"
    url: str | None = None
    secret_env: str | None = None
    timeout_s: float = 10.0
    max_calls: int = 50
    code_timeout_s: float = 5.0
    code_cpu_s: int = 2
    code_memory_mb: int = 512
    cache_code_runs: bool = False
    parallel_calls: int = 4

    def to_dict(self) -> Any:
        if self.type == "simulated":
            return "simulated"
        d = asdict(self)
        keep = {"builtin": ("type", "code_timeout_s", "code_cpu_s", "code_memory_mb", "cache_code_runs",
                            "parallel_calls"),
                "http": ("type", "url", "secret_env", "timeout_s", "max_calls", "parallel_calls")}[self.type]
        return {k: d[k] for k in keep}


@dataclass(frozen=True)
class GraderSpec:
    url: str
    secret_env: str | None = None
    timeout_s: float = 10.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _number(raw: Mapping[str, Any], key: str, where: str, lo: float, hi: float, default: float,
            integer: bool = False) -> Any:
    v = raw.get(key, default)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise InvalidArgument(f"{where}.{key}", f"must be a number in [{lo:g}, {hi:g}]")
    if integer:
        if float(v) != int(v):
            raise InvalidArgument(f"{where}.{key}", "must be an integer")
        v = int(v)
    if not lo <= v <= hi:
        raise InvalidArgument(f"{where}.{key}", f"must be in [{lo:g}, {hi:g}], got {v:g}")
    return v if integer else float(v)


def parse_url(raw: Any, where: str) -> str:
    """An http(s) URL with a host and no credentials (credentials go through ``secret_env``)."""
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 2000:
        raise InvalidArgument(where, "must be an http:// or https:// URL")
    parsed = urllib.parse.urlsplit(raw.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidArgument(where, "must be an http:// or https:// URL with a host")
    if parsed.username or parsed.password:
        raise InvalidArgument(where, "must not carry credentials; name an environment variable in secret_env")
    if parsed.query or parsed.fragment:
        raise InvalidArgument(where, "must not have a query string or fragment (secrets go in secret_env)")
    return raw.strip().rstrip("/")


def _secret_env(raw: Mapping[str, Any], where: str) -> str | None:
    name = raw.get("secret_env", raw.get("secretEnv"))
    if name is None or name == "":
        return None
    if not isinstance(name, str) or not _ENV_VAR_RE.match(name):
        raise InvalidArgument(f"{where}.secret_env", "must be the NAME of an environment variable (A-Z, 0-9, _) "
                                                     "holding the bearer token, not the token itself")
    return name


def _check_keys(raw: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise InvalidArgument(f"{where}.{unknown[0]}", f"unknown property; expected one of {', '.join(sorted(allowed))}")


def parse_environment(raw: Any, where: str = "environment") -> EnvironmentSpec:
    if raw is None:
        return EnvironmentSpec()
    if isinstance(raw, EnvironmentSpec):
        return raw
    if isinstance(raw, str):
        name = raw.strip().lower()
        if name in ("simulated", "builtin"):
            return EnvironmentSpec(type=name)
        raise InvalidArgument(where, f"must be 'simulated', 'builtin' or an object with type {ENVIRONMENT_TYPES}")
    if not isinstance(raw, Mapping):
        raise InvalidArgument(where, "must be 'simulated', 'builtin' or an object {type, ...}")
    kind = raw.get("type")
    if kind not in ENVIRONMENT_TYPES:
        raise InvalidArgument(f"{where}.type", f"must be one of {', '.join(ENVIRONMENT_TYPES)}")
    if kind == "simulated":
        _check_keys(raw, {"type"}, where)
        return EnvironmentSpec()
    if kind == "builtin":
        _check_keys(raw, {"type", "code_timeout_s", "code_cpu_s", "code_memory_mb", "cache_code_runs",
                          "parallel_calls"}, where)
        cache = raw.get("cache_code_runs", False)
        if not isinstance(cache, bool):
            raise InvalidArgument(f"{where}.cache_code_runs", "must be true or false")
        return EnvironmentSpec(type="builtin",
                               code_timeout_s=_number(raw, "code_timeout_s", where, 0.1, 60, 5.0),
                               code_cpu_s=_number(raw, "code_cpu_s", where, 1, 60, 2, integer=True),
                               code_memory_mb=_number(raw, "code_memory_mb", where, 64, 4096, 512, integer=True),
                               cache_code_runs=cache,
                               parallel_calls=_number(raw, "parallel_calls", where, 1, 32, 4, integer=True))
    _check_keys(raw, {"type", "url", "secret_env", "secretEnv", "timeout_s", "max_calls", "parallel_calls"}, where)
    return EnvironmentSpec(type="http", url=parse_url(raw.get("url"), f"{where}.url"),
                           secret_env=_secret_env(raw, where),
                           timeout_s=_number(raw, "timeout_s", where, 0.05, 120, 10.0),
                           max_calls=_number(raw, "max_calls", where, 1, 1000, 50, integer=True),
                           parallel_calls=_number(raw, "parallel_calls", where, 1, 32, 4, integer=True))


def parse_grader(raw: Any, where: str = "grader") -> GraderSpec | None:
    if raw is None:
        return None
    if isinstance(raw, GraderSpec):
        return raw
    if not isinstance(raw, Mapping):
        raise InvalidArgument(where, "must be an object {url, secret_env, timeout_s} or null")
    _check_keys(raw, {"url", "secret_env", "secretEnv", "timeout_s"}, where)
    return GraderSpec(url=parse_url(raw.get("url"), f"{where}.url"), secret_env=_secret_env(raw, where),
                      timeout_s=_number(raw, "timeout_s", where, 0.05, 120, 10.0))


def parse_comparisons(raw: Any, where: str = "outcome_comparisons") -> dict[str, Any]:
    """``{field: "exact" | "at_most" | "at_least" | {"tolerance": t} | {"rel_tolerance": r}}``;
    merged over ``DEFAULT_COMPARISONS`` (a job can set ``execution_time_ms`` back to "exact")."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidArgument(where, "must be an object {field: comparison}")
    out: dict[str, Any] = {}
    for key, rule in raw.items():
        if not isinstance(key, str) or not key:
            raise InvalidArgument(where, "field names must be non-empty strings")
        if isinstance(rule, str) and rule in COMPARISONS:
            out[key] = rule
            continue
        if isinstance(rule, Mapping) and len(rule) == 1 and next(iter(rule)) in ("tolerance", "rel_tolerance"):
            (name, value), = rule.items()
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 <= value < math.inf):
                raise InvalidArgument(f"{where}.{key}.{name}", "must be a finite number >= 0")
            out[key] = {name: float(value)}
            continue
        raise InvalidArgument(f"{where}.{key}", "must be 'exact', 'at_most', 'at_least', {\"tolerance\": t} or "
                                                "{\"rel_tolerance\": r}")
    return out
