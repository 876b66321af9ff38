"""A hyperparameter sweep's search space, its samplers and its early-stopping rules; no gRPC.

The space is validated against the training config model (services/core/configs) it will configure:
a field the model does not have, a range on a field that is not a number, a value or a range end
outside the field's own range is ``InvalidArgument`` naming both the request path and the config
field, so a sweep never starts trials that StartJob would refuse one by one.

Samplers are functions of (seed, trial number, earlier trials), never of hidden state, so a sweep
resumed after a restart asks for the same parameters it would have asked for without one:

* grid: the cartesian product of every parameter's values (a range needs ``steps``), in order;
* random: each trial's values drawn from a generator seeded by (seed, trial number);
* tpe: Optuna's TPESampler (a maintained Tree-structured Parzen estimator) over an in-memory study
  rebuilt from the earlier trials' results and asked for one point (ask/tell), so the sweep, not
  Optuna, decides when a trial runs.

Early stopping reads each trial's curve: its best objective value so far after each epoch.
"""
from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import NoneType, UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import numpy as np

from trainhouse.core.configs import ConfigModel, flat_spellings
from trainhouse.core.errors import InvalidArgument

SAMPLERS = ("grid", "random", "tpe")
DIRECTIONS = ("minimize", "maximize")
RULES = ("none", "median", "asha")
MAX_PARAMS = 16
MAX_CHOICES = 100
MAX_GRID_STEPS = 100
# Fields a sweep may not set: they say what and how a job runs, not how well it learns.
NOT_SEARCHABLE = ("max_budget_usd", "curriculum_enabled", "curriculum_stages")


@dataclass(frozen=True)
class Param:
    """One searched field: ``values`` (choices) or a range ``low..high`` (``log``, ``integer``)."""

    field: str                       # canonical snake_case config field
    values: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    integer: bool = False
    steps: int = 0                   # grid points of a range (0: not griddable)

    @property
    def is_choice(self) -> bool:
        return bool(self.values)

    def to_dict(self) -> dict[str, Any]:
        if self.is_choice:
            return {"field": self.field, "choices": list(self.values)}
        return {"field": self.field, "range": {"low": self.low, "high": self.high, "log": self.log,
                                               "integer": self.integer, "steps": self.steps}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Param":
        if "choices" in data:
            return cls(data["field"], tuple(data["choices"]))
        r = data["range"]
        return cls(data["field"], (), float(r["low"]), float(r["high"]), bool(r["log"]), bool(r["integer"]),
                   int(r["steps"]))

    def grid(self) -> list[Any]:
        if self.is_choice:
            return list(self.values)
        if self.log:
            points = np.geomspace(self.low, self.high, self.steps)
        else:
            points = np.linspace(self.low, self.high, self.steps)
        if self.integer:
            return list(dict.fromkeys(int(round(p)) for p in points))
        return [float(p) for p in points]


# ---- validation ----------------------------------------------------------------------------------

def _scalar(annotation: Any) -> type | None:
    """int, float, bool or str behind a field's annotation (Optional, Annotated unwrapped), else None."""
    if annotation in (int, float, bool, str):
        return annotation
    origin = get_origin(annotation)
    if origin is Annotated:
        return _scalar(get_args(annotation)[0])
    if origin in (Union, UnionType):
        kinds = [_scalar(a) for a in get_args(annotation) if a is not NoneType]
        return kinds[0] if len(kinds) == 1 else None
    return None


def config_field(config: type[ConfigModel], name: str) -> str:
    """The canonical name of the config field spelt ``name`` (snake_case or camelCase)."""
    for canonical, info in config.model_fields.items():
        if name == canonical or name in flat_spellings(info, canonical).choices:
            return canonical
    raise KeyError(name)


def _check_value(config: type[ConfigModel], name: str, value: Any, at: str) -> None:
    """``value`` as the config model would take it for ``name`` (its type, range and enum)."""
    try:
        config.from_dict({name: value}, strict=False)
    except InvalidArgument as err:
        raise InvalidArgument(at, f"{name}: {err.message}") from None


def parse_param(config: type[ConfigModel], raw: Mapping[str, Any], at: str, sampler: str) -> Param:
    """One parameter of the space, checked against ``config`` (``at``: its request path)."""
    written = str(raw.get("field") or "")
    if not written:
        raise InvalidArgument(f"{at}.field", "is required")
    try:
        name = config_field(config, written)
    except KeyError:
        raise InvalidArgument(f"{at}.field", f"'{written}' is not a field of the {config.kind} config") from None
    if name in NOT_SEARCHABLE:
        raise InvalidArgument(f"{at}.field", f"{name} cannot be searched (it limits or shapes the job, it is not "
                                             f"a hyperparameter)")
    if "choices" in raw:
        values = list(raw["choices"])
        if not 1 <= len(values) <= MAX_CHOICES:
            raise InvalidArgument(f"{at}.choices", f"{name}: 1..{MAX_CHOICES} values")
        for i, value in enumerate(values):
            _check_value(config, name, value, f"{at}.choices[{i}]")
        return Param(name, tuple(_canonical(v) for v in values))
    if "range" not in raw:
        raise InvalidArgument(at, f"{name}: give choices or a range")
    return _parse_range(config, name, raw["range"], f"{at}.range", sampler)


def _canonical(value: Any) -> Any:
    """Integral numbers as ints (a transport's Struct carries every number as a double)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def _parse_range(config: type[ConfigModel], name: str, r: Mapping[str, Any], at: str, sampler: str) -> Param:
    kind = _scalar(config.model_fields[name].annotation)
    if kind not in (int, float):
        raise InvalidArgument(at, f"{name} is not a number: give choices")
    low, high = float(r.get("low", 0.0)), float(r.get("high", 0.0))
    if not (math.isfinite(low) and math.isfinite(high)):
        raise InvalidArgument(at, f"{name}: low and high must be finite numbers")
    if low >= high:
        raise InvalidArgument(f"{at}.high", f"{name}: high must be greater than low")
    integer = bool(r.get("integer")) or kind is int
    if integer and not (low.is_integer() and high.is_integer()):
        raise InvalidArgument(at, f"{name} is an integer field: low and high must be whole numbers")
    log = bool(r.get("log"))
    if log and low <= 0:
        raise InvalidArgument(f"{at}.low", f"{name}: a log range needs low > 0")
    for end, value in (("low", low), ("high", high)):
        _check_value(config, name, int(value) if integer else value, f"{at}.{end}")
    steps = int(r.get("steps", 0) or 0)
    if sampler == "grid" and steps < 2:
        raise InvalidArgument(f"{at}.steps", f"{name}: the grid sampler needs steps >= 2 for a range")
    if not 0 <= steps <= MAX_GRID_STEPS:
        raise InvalidArgument(f"{at}.steps", f"{name}: 0..{MAX_GRID_STEPS}")
    return Param(name, (), low, high, log, integer, steps)


def parse_space(config: type[ConfigModel], params: Sequence[Mapping[str, Any]], sampler: str,
                at: str = "sweep.space") -> list[Param]:
    """The whole space: 1..16 parameters, each field once."""
    if not params:
        raise InvalidArgument(at, "at least one parameter is required")
    if len(params) > MAX_PARAMS:
        raise InvalidArgument(at, f"at most {MAX_PARAMS} parameters")
    space: list[Param] = []
    for i, raw in enumerate(params):
        param = parse_param(config, raw, f"{at}[{i}]", sampler)
        if any(p.field == param.field for p in space):
            raise InvalidArgument(f"{at}[{i}].field", f"{param.field} appears twice")
        space.append(param)
    return space


def apply_params(config: Mapping[str, Any], params: Mapping[str, Any], model: type[ConfigModel]) -> dict[str, Any]:
    """The base config dict with ``params`` set, every other flat spelling of those fields removed
    (so the trial's value is the only one the config model sees)."""
    out = dict(config)
    for name, value in params.items():
        for spelling in flat_spellings(model.model_fields[name], name).choices:
            out.pop(spelling, None)
        out[name] = value
    return out


# ---- samplers ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Finished:
    """An earlier trial as a sampler sees it: its parameters and objective (None: none recorded)."""

    params: dict[str, Any]
    value: float | None


def grid_size(space: Sequence[Param]) -> int:
    return math.prod(len(p.grid()) for p in space)


def suggest(sampler: str, space: Sequence[Param], seed: int, number: int, history: Sequence[Finished],
            direction: str, max_trials: int) -> dict[str, Any]:
    """Parameters of trial ``number`` (0-based)."""
    if sampler == "grid":
        points = itertools.product(*(p.grid() for p in space))
        point = next(itertools.islice(points, number, None))
        return {p.field: v for p, v in zip(space, point)}
    if sampler == "random":
        return _random(space, np.random.default_rng([seed, number]))
    if sampler == "tpe":
        return _tpe(space, seed, number, history, direction, max_trials)
    raise ValueError(f"unknown sampler {sampler!r}")


def _random(space: Sequence[Param], rng: np.random.Generator) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in space:
        if p.is_choice:
            out[p.field] = p.values[int(rng.integers(len(p.values)))]
            continue
        if p.log:
            value = math.exp(rng.uniform(math.log(p.low), math.log(p.high)))
        else:
            value = rng.uniform(p.low, p.high)
        out[p.field] = int(min(max(round(value), p.low), p.high)) if p.integer else float(value)
    return out


def _tpe(space: Sequence[Param], seed: int, number: int, history: Sequence[Finished], direction: str,
         max_trials: int) -> dict[str, Any]:
    import optuna  # imported here: only TPE sweeps need it, and it takes a moment to import

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = {p.field: _distribution(optuna, p) for p in space}
    # Random start-up trials before TPE models the results: a quarter of the sweep, 3..10.
    startup = max(3, min(10, max_trials // 4))
    study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(
        seed=(seed * 1_000_003 + number) % 2 ** 32, n_startup_trials=startup))
    for done in history:
        if done.value is None:
            continue
        study.add_trial(optuna.trial.create_trial(
            params={p.field: _encoded(p, done.params[p.field]) for p in space},
            distributions=distributions, value=done.value))
    trial = study.ask(distributions)
    return {p.field: _decoded(p, trial.params[p.field]) for p in space}


def _distribution(optuna: Any, p: Param) -> Any:
    # Choices go in by index: Optuna's categorical values must be hashable scalars, a hidden_sizes
    # choice is a list; TPE treats categories as unordered either way.
    if p.is_choice:
        return optuna.distributions.CategoricalDistribution(list(range(len(p.values))))
    if p.integer:
        return optuna.distributions.IntDistribution(int(p.low), int(p.high), log=p.log)
    return optuna.distributions.FloatDistribution(p.low, p.high, log=p.log)


def _encoded(p: Param, value: Any) -> Any:
    return p.values.index(value) if p.is_choice else value


def _decoded(p: Param, value: Any) -> Any:
    return p.values[value] if p.is_choice else (int(value) if p.integer else float(value))


# ---- early stopping ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stopping:
    rule: str = "none"
    grace_epochs: int = 2
    reduction_factor: int = 3


def best_so_far(values: Sequence[float], direction: str) -> list[float]:
    """A curve: after each epoch, the best value up to it."""
    pick = min if direction == "minimize" else max
    out: list[float] = []
    for v in values:
        out.append(v if not out else pick(out[-1], v))
    return out


def _worse(a: float, b: float, direction: str) -> bool:
    return a > b if direction == "minimize" else a < b


def should_stop(rule: Stopping, curve: Sequence[float], others: Sequence[Sequence[float]],
                direction: str) -> str | None:
    """Why a running trial whose best-so-far curve is ``curve`` should stop now, or None.
    ``others``: the curves of the sweep's other trials (running or ended)."""
    epoch = len(curve)
    if rule.rule == "none" or epoch < rule.grace_epochs:
        return None
    if rule.rule == "median":
        # Compare at the trial's newest epoch with the trials that got that far (at least two, so
        # one early result does not decide).
        peers = [c[epoch - 1] for c in others if len(c) >= epoch]
        if len(peers) < 2:
            return None
        median = statistics.median(peers)
        if _worse(curve[-1], median, direction):
            return (f"median rule at epoch {epoch}: best {curve[-1]:.4g} is worse than the median "
                    f"{median:.4g} of {len(peers)} trials")
        return None
    if rule.rule == "asha":
        rung = _rung(epoch, rule)
        if rung is None:
            return None
        # Everyone's value at this rung, this trial's included; decide once at least
        # reduction_factor trials reached it (asynchronous SHA cannot pause a trial).
        values = [c[rung - 1] for c in others if len(c) >= rung] + [curve[rung - 1]]
        if len(values) < rule.reduction_factor:
            return None
        keep = max(1, len(values) // rule.reduction_factor)
        ranked = sorted(values, reverse=(direction == "maximize"))
        cutoff = ranked[keep - 1]
        if _worse(curve[rung - 1], cutoff, direction):
            return (f"ASHA rung at epoch {rung}: best {curve[rung - 1]:.4g} is not in the top {keep} of "
                    f"{len(values)} trials (cutoff {cutoff:.4g})")
        return None
    raise ValueError(f"unknown rule {rule.rule!r}")


def _rung(epoch: int, rule: Stopping) -> int | None:
    """The rung (an epoch count grace * rf^k) that ``epoch`` is, or None between rungs."""
    rung = rule.grace_epochs
    while rung < epoch:
        rung *= rule.reduction_factor
    return rung if rung == epoch else None


def best_trial(values: Mapping[int, float | None], direction: str) -> int | None:
    """The number of the trial with the best objective (the earliest on a tie)."""
    scored = [(n, v) for n, v in sorted(values.items()) if v is not None]
    if not scored:
        return None
    pick = min if direction == "minimize" else max
    return pick(scored, key=lambda nv: nv[1])[0]


__all__ = ["DIRECTIONS", "Finished", "Param", "RULES", "SAMPLERS", "Stopping", "apply_params", "best_so_far",
           "best_trial", "config_field", "grid_size", "parse_space", "should_stop", "suggest"]
