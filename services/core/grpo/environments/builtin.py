"""The built-in reference environment: tools that compute, look up and run code for real.

The policy chooses WHICH tool to call and when to ``finish``; each tool's ARGUMENTS come from a
documented parser of the query text and of the episode so far (the table below). A call whose
arguments cannot be parsed, or whose work fails, fails: the state is unchanged, the result
carries the error, and the policy sees "last call failed" at its next step.

================  =========================================================  ============================
tool              arguments (parser)                                         on success writes
================  =========================================================  ============================
calculator        expression: the longest arithmetic expression in the        answer
                  query (operator words: plus, minus, times, divided by...)
unit_converter    value, from_unit, to_unit: "<number> <unit> to|in|into      answer, unit
                  <unit>" or "how many <unit> in|are in <number> <unit>"
                  (length, mass, time, temperature; see UNITS)
date_calculator   "<N> days|weeks after|before|from <YYYY-MM-DD>" -> date;    answer
                  "days between <date> and <date>" -> integer; "weekday
                  of|was|is <date>" -> day name
table_lookup      column, key: "<population|area|country> of <City Name>";    answer
                  a parameterised SELECT on the DuckDB table ``cities``
code_loader       implementation: a name from the code library              code_loaded, task
                  (code_library.py) appearing in the query
code_runner       implementation and task: the ones ``code_loader`` put      test_passed, tests_passed,
                  into the episode (fails if none)                           tests_total, execution_time_ms
finish            -                                                           ends the episode
================  =========================================================  ============================

``code_runner`` runs the implementation against its task's tests in a resource-limited
subprocess (``sandbox.py``, NOT a security boundary), so ``test_passed`` and
``execution_time_ms`` are measured. With ``cache_code_runs`` the first measured run of an
(implementation, task) pair is reused for the rest of the job (each Ray worker has its own copy).
The DuckDB table lives in an in-memory database created on first use in each process.
"""
from __future__ import annotations

import datetime as dt
import re
import threading
from typing import Any

from trainhouse.core.grpo.environment import Episode, ToolEnvironment
from trainhouse.core.grpo.environments.code_library import IMPLEMENTATIONS, TASKS
from trainhouse.core.grpo.environments.sandbox import SandboxLimits, run_cases
from trainhouse.core.grpo.environments.spec import EnvironmentSpec
from trainhouse.core.grpo.tools import DEFAULT_TOOLS, EffectOutcome, ToolSpec, evaluate_expression, find_expression

FINISH_TOOL = DEFAULT_TOOLS[-1]


def _schema(**props: str) -> dict[str, Any]:
    return {"type": "object", "properties": {k: {"type": v} for k, v in props.items()}, "required": list(props)}


BUILTIN_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec("calculator", "Evaluate the arithmetic expression in the query (safe AST evaluation).",
             outputs=("answer",), arguments=_schema(expression="string")),
    ToolSpec("unit_converter", "Convert the quantity in the query to the unit it asks for.",
             outputs=("answer", "unit"), arguments=_schema(value="number", from_unit="string", to_unit="string")),
    ToolSpec("date_calculator", "Date arithmetic: a date plus/minus days or weeks, days between dates, weekdays.",
             outputs=("answer",), arguments=_schema(operation="string", dates="array")),
    ToolSpec("table_lookup", "Look up a city's population, area or country in the local DuckDB table `cities`.",
             outputs=("answer",), arguments=_schema(table="string", column="string", key="string")),
    ToolSpec("code_loader", "Load the implementation named in the query from the code library.",
             outputs=("code_loaded", "task"), arguments=_schema(implementation="string")),
    ToolSpec("code_runner", "Run the loaded implementation against its task's tests in a sandboxed subprocess; "
                            "measures test_passed and execution_time_ms.",
             requires=("code_loaded",), outputs=("test_passed", "tests_passed", "tests_total", "execution_time_ms"),
             arguments=_schema(implementation="string", task="string")),
    FINISH_TOOL,
)

# --- units -----------------------------------------------------------------------------------------
# unit word -> (dimension, factor to the dimension's base unit); temperatures are affine (below).
UNITS: dict[str, tuple[str, float]] = {}
for _names, _dim, _factor in [
    (("m", "meter", "meters", "metre", "metres"), "length", 1.0),
    (("km", "kilometer", "kilometers", "kilometre", "kilometres"), "length", 1000.0),
    (("cm", "centimeter", "centimeters"), "length", 0.01),
    (("mm", "millimeter", "millimeters"), "length", 0.001),
    (("mi", "mile", "miles"), "length", 1609.344),
    (("ft", "foot", "feet"), "length", 0.3048),
    (("in", "inch", "inches"), "length", 0.0254),
    (("yd", "yard", "yards"), "length", 0.9144),
    (("kg", "kilogram", "kilograms"), "mass", 1.0),
    (("g", "gram", "grams"), "mass", 0.001),
    (("lb", "lbs", "pound", "pounds"), "mass", 0.45359237),
    (("oz", "ounce", "ounces"), "mass", 0.028349523125),
    (("s", "sec", "second", "seconds"), "time", 1.0),
    (("min", "minute", "minutes"), "time", 60.0),
    (("h", "hr", "hour", "hours"), "time", 3600.0),
    (("day", "days"), "time", 86400.0),
    (("week", "weeks"), "time", 604800.0),
    (("c", "celsius", "°c"), "temperature", 1.0),
    (("f", "fahrenheit", "°f"), "temperature", 1.0),
    (("k", "kelvin"), "temperature", 1.0),
]:
    for _n in _names:
        UNITS[_n] = (_dim, _factor)
_CANONICAL = {"c": "celsius", "°c": "celsius", "f": "fahrenheit", "°f": "fahrenheit", "k": "kelvin"}
_UNIT_WORD = r"(°?[a-zA-Z]+)"
_NUM = r"(-?\d+(?:\.\d+)?)"
_CONVERT_RE = re.compile(rf"{_NUM}\s*{_UNIT_WORD}\s+(?:to|in|into)\s+{_UNIT_WORD}", re.I)
_HOW_MANY_RE = re.compile(rf"how\s+many\s+{_UNIT_WORD}\s+(?:are\s+)?(?:in|is|make)\s+{_NUM}\s*{_UNIT_WORD}", re.I)


def _to_celsius(v: float, unit: str) -> float:
    return {"celsius": v, "fahrenheit": (v - 32) * 5 / 9, "kelvin": v - 273.15}[unit]


def _from_celsius(v: float, unit: str) -> float:
    return {"celsius": v, "fahrenheit": v * 9 / 5 + 32, "kelvin": v + 273.15}[unit]


def parse_conversion(query: str) -> tuple[float, str, str] | None:
    """(value, from_unit, to_unit) from "5 km to miles" / "how many feet in 3 meters", else None."""
    m = _CONVERT_RE.search(query)
    if m and m.group(2).lower() in UNITS and m.group(3).lower() in UNITS:
        return float(m.group(1)), m.group(2).lower(), m.group(3).lower()
    m = _HOW_MANY_RE.search(query)
    if m and m.group(1).lower() in UNITS and m.group(3).lower() in UNITS:
        return float(m.group(2)), m.group(3).lower(), m.group(1).lower()
    return None


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """``value`` in ``from_unit`` expressed in ``to_unit`` (ValueError across dimensions)."""
    (d1, f1), (d2, f2) = UNITS[from_unit], UNITS[to_unit]
    if d1 != d2:
        raise ValueError(f"cannot convert {d1} ({from_unit}) to {d2} ({to_unit})")
    if d1 == "temperature":
        a, b = _CANONICAL.get(from_unit, from_unit), _CANONICAL.get(to_unit, to_unit)
        return round(_from_celsius(_to_celsius(value, a), b), 6)
    return round(value * f1 / f2, 6)


# --- dates -----------------------------------------------------------------------------------------
_DATE = r"(\d{4}-\d{2}-\d{2})"
_OFFSET_RE = re.compile(rf"(\d+)\s+(days?|weeks?)\s+(after|before|from)\s+{_DATE}", re.I)
_BETWEEN_RE = re.compile(rf"between\s+{_DATE}\s+and\s+{_DATE}", re.I)
_WEEKDAY_RE = re.compile(rf"(?:weekday|day of the week)\b.*?{_DATE}", re.I)


def date_arithmetic(query: str) -> tuple[dict[str, Any], Any]:
    """(arguments, answer) of the date question in ``query``; ValueError when there is none."""
    m = _OFFSET_RE.search(query)
    if m:
        n, unit, direction, date = int(m.group(1)), m.group(2).lower(), m.group(3).lower(), m.group(4)
        days = n * (7 if unit.startswith("week") else 1) * (-1 if direction == "before" else 1)
        start = dt.date.fromisoformat(date)
        return ({"operation": "add_days", "dates": [date], "days": days},
                (start + dt.timedelta(days=days)).isoformat())
    m = _BETWEEN_RE.search(query)
    if m:
        a, b = dt.date.fromisoformat(m.group(1)), dt.date.fromisoformat(m.group(2))
        return {"operation": "days_between", "dates": [m.group(1), m.group(2)]}, abs((b - a).days)
    m = _WEEKDAY_RE.search(query)
    if m:
        return {"operation": "weekday", "dates": [m.group(1)]}, dt.date.fromisoformat(m.group(1)).strftime("%A")
    raise ValueError("no date question (N days after/before DATE, days between DATE and DATE, weekday of DATE)")


# --- the DuckDB table ------------------------------------------------------------------------------
# (city, country, population (city proper, rounded), area_km2): reference data for lookups.
CITIES = [
    ("Lisbon", "Portugal", 545000, 100.0), ("Paris", "France", 2103000, 105.4), ("Tokyo", "Japan", 13960000, 2194.0),
    ("Nairobi", "Kenya", 4397000, 696.0), ("Lima", "Peru", 9750000, 2672.0), ("Oslo", "Norway", 709000, 454.0),
    ("Madrid", "Spain", 3332000, 604.3), ("Rome", "Italy", 2873000, 1285.0), ("Vienna", "Austria", 1931000, 414.9),
    ("Prague", "Czechia", 1357000, 496.0), ("Dublin", "Ireland", 592000, 117.8), ("Warsaw", "Poland", 1863000, 517.2),
    ("Montreal", "Canada", 1762000, 431.5), ("Cairo", "Egypt", 10230000, 3085.0),
    ("Sydney", "Australia", 5312000, 12368.0), ("Berlin", "Germany", 3645000, 891.8),
    ("Buenos Aires", "Argentina", 3075000, 203.0), ("Seoul", "South Korea", 9411000, 605.2),
    ("Toronto", "Canada", 2794000, 630.2), ("Helsinki", "Finland", 664000, 715.5),
]
_LOOKUP_RE = re.compile(r"\b(population|area|country)\s+of\s+([A-Z][\w'\-]*(?:\s+[A-Z][\w'\-]*)*)")
_COLUMNS = {"population": "population", "area": "area_km2", "country": "country"}


# --- the environment -------------------------------------------------------------------------------
class BuiltinEnvironment(ToolEnvironment):
    """``ToolEnvironment`` whose tools run real computations (module docstring)."""

    kind = "builtin"

    def __init__(self, max_steps: int, spec: EnvironmentSpec | None = None):
        super().__init__(BUILTIN_TOOLS, max_steps)
        spec = spec or EnvironmentSpec(type="builtin")
        self.spec = spec
        self.limits = SandboxLimits(spec.code_timeout_s, spec.code_cpu_s, spec.code_memory_mb)
        self.cache_code_runs = spec.cache_code_runs
        self.parallel_calls = spec.parallel_calls
        self._runs: dict[tuple[str, str], dict[str, Any]] = {}
        self._db: Any = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_db"] = None       # a DuckDB connection does not travel (Ray); each process opens its own
        state["_lock"] = None
        state["_runs"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _connection(self) -> Any:
        with self._lock:
            if self._db is None:
                import duckdb

                db = duckdb.connect(":memory:")
                db.execute("CREATE TABLE cities (city VARCHAR PRIMARY KEY, country VARCHAR, population BIGINT, "
                           "area_km2 DOUBLE)")
                db.executemany("INSERT INTO cities VALUES (?, ?, ?, ?)", CITIES)
                self._db = db
            return self._db

    # -- tools --------------------------------------------------------------------------------------
    def _call(self, name: str, episode: Episode) -> EffectOutcome:
        query = episode.query
        if name == "calculator":
            expr = find_expression(query)
            if expr is None:
                return EffectOutcome({"expression": None}, error="no arithmetic expression in the query")
            try:
                value = evaluate_expression(expr)
            except ValueError as exc:
                return EffectOutcome({"expression": expr}, error=str(exc))
            return EffectOutcome({"expression": expr}, sets={"answer": value}, output={"value": value})
        if name == "unit_converter":
            parsed = parse_conversion(query)
            if parsed is None:
                return EffectOutcome({}, error="no conversion (<number> <unit> to <unit>) in the query")
            value, a, b = parsed
            args = {"value": value, "from_unit": a, "to_unit": b}
            try:
                result = convert(value, a, b)
            except ValueError as exc:
                return EffectOutcome(args, error=str(exc))
            return EffectOutcome(args, sets={"answer": result, "unit": b}, output={"value": result, "unit": b})
        if name == "date_calculator":
            try:
                args, answer = date_arithmetic(query)
            except ValueError as exc:
                return EffectOutcome({}, error=str(exc))
            return EffectOutcome(args, sets={"answer": answer}, output={"value": answer})
        if name == "table_lookup":
            m = _LOOKUP_RE.search(query)
            if m is None:
                return EffectOutcome({}, error="no lookup (<population|area|country> of <City>) in the query")
            column, key = _COLUMNS[m.group(1).lower()], m.group(2)
            args = {"table": "cities", "column": column, "key": key}
            db = self._connection()
            with self._lock:
                rows = db.execute(f"SELECT {column} FROM cities WHERE lower(city) = lower(?)", [key]).fetchall()
            if not rows:
                return EffectOutcome(args, error=f"no row for {key!r} in table cities")
            value = rows[0][0]
            return EffectOutcome(args, sets={"answer": value}, output={"value": value, "rows": 1})
        if name == "code_loader":
            found = [impl for impl in IMPLEMENTATIONS if re.search(rf"\b{impl}\b", query)]
            if not found:
                return EffectOutcome({"implementation": None}, error="no implementation of the code library named "
                                                                     "in the query")
            impl = found[0]
            task = IMPLEMENTATIONS[impl]
            return EffectOutcome({"implementation": impl}, sets={"code_loaded": impl, "task": task},
                                 output={"task": task, "source": TASKS[task].implementations[impl]})
        if name == "code_runner":
            impl, task_name = episode.outcome.get("code_loaded"), episode.outcome.get("task")
            args = {"implementation": impl, "task": task_name}
            if not impl or task_name not in TASKS:
                return EffectOutcome(args, error="no implementation loaded (call code_loader first)")
            run = self._run_code(impl, task_name)
            output = {k: run[k] for k in ("tests_passed", "tests_total", "execution_time_ms", "wall_ms", "failures",
                                          "cached") if k in run}
            if not run["completed"]:
                return EffectOutcome(args, output=output, error=run["error"])
            sets = {"test_passed": run["test_passed"], "tests_passed": run["tests_passed"],
                    "tests_total": run["tests_total"], "execution_time_ms": round(run["execution_time_ms"], 3)}
            return EffectOutcome(args, sets=sets, output=output)
        raise KeyError(name)

    def _run_code(self, impl: str, task_name: str) -> dict[str, Any]:
        key = (impl, task_name)
        if self.cache_code_runs and key in self._runs:
            return {**self._runs[key], "cached": True}
        task = TASKS[task_name]
        run = run_cases(task.implementations[impl], task.function, task.cases(), self.limits)
        run["cached"] = False
        if self.cache_code_runs and run["completed"]:
            self._runs[key] = run
        return run

    def _run_tool(self, tool: ToolSpec, episode: Episode) -> tuple[dict[str, Any], dict[str, Any]]:
        state = episode.outcome
        try:
            call = self._call(tool.name, episode)
        except Exception as exc:  # a tool's own bug is an observation, not a crashed job
            return {}, {"ok": False, "error": f"{tool.name} failed: {type(exc).__name__}: {exc}"}
        if call.error:
            result: dict[str, Any] = {"ok": False, "error": call.error}
            if call.output:
                result["output"] = dict(call.output)
            return dict(call.params), result
        changes = {}
        for k, v in call.sets.items():
            state[k] = v
            changes[k] = v
        return dict(call.params), {"ok": True, "changes": changes, "output": dict(call.output)}

