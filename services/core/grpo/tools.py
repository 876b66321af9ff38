"""The tool catalog of the GRPO environment: what each tool needs and what it changes.

A tool is declarative, so a custom catalog travels in a job's JSON config and in its checkpoints:

* ``requires``      state fields that must all be truthy before the tool can succeed;
* ``requires_any``  if non-empty, at least one of these fields must be truthy;
* ``sets``          fields written on success (JSON values);
* ``clears``        fields removed on success (e.g. new code invalidates earlier test results);
* ``effect``        an optional built-in computation on the query text (see ``EFFECTS``), which
                    supplies the call's ``params`` and may write computed fields or fail;
* ``ends_episode``  only ``finish``: ends the trajectory.

A call whose preconditions are not met fails: the state is unchanged and the result carries the
reason. Because some tools only succeed after others (``test_runner`` after ``code_generator``,
``summarizer`` after something was retrieved, ``email_sender`` after a summary), and the number of
steps is bounded, the order of the calls matters: the policy has to plan.

The default catalog (``DEFAULT_TOOLS``), every field it can write, and its preconditions:

=================  ==============================================  =============================
tool               on success                                      needs
=================  ==============================================  =============================
search             context_retrieved = true                        -
file_reader        file_read = true, file_path = <path in query>   a file name in the query
database_query     data_retrieved = true                           -
summarizer         summary_written = true                          context_retrieved, file_read
                                                                   or data_retrieved
code_generator     code_generated = true; clears tests_run,        -
                   test_passed
test_runner        tests_run = true, test_passed = true            code_generated
calculator         answer = <value of the arithmetic in query>     an arithmetic expression
weather            weather_checked = true, location = <place>      "in/at/for <Capitalised place>"
email_sender       email_sent = true, recipient = <address|null>   summary_written
finish             ends the trajectory                             -
=================  ==============================================  =============================

The environment is a deterministic simulator: tools do not touch the network or the file system;
their outputs report what they processed (the parameters taken from the query) and the fields
they changed, which is what the reward functions compare with ``expected_outcome``.
"""
from __future__ import annotations

import ast
import functools
import math
import operator
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from trainhouse.core.errors import InvalidArgument

FINISH = "finish"
# Fields the environment maintains itself; tools may not write them.
RESERVED_FIELDS = ("tools_used", "steps")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_TOOLS = 64


# --- built-in effects ----------------------------------------------------------------------------
@dataclass(frozen=True)
class EffectOutcome:
    """What a built-in effect computed: the call's params, and either fields to write or an error."""

    params: dict[str, Any]
    sets: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


_WORD_OPS = [
    (re.compile(r"\bmultiplied\s+by\b", re.I), "*"),
    (re.compile(r"\bdivided\s+by\b", re.I), "/"),
    (re.compile(r"\btimes\b", re.I), "*"),
    (re.compile(r"\bplus\b", re.I), "+"),
    (re.compile(r"\bminus\b", re.I), "-"),
    (re.compile(r"\bover\b", re.I), "/"),
    (re.compile(r"\bto\s+the\s+power\s+of\b", re.I), "**"),
    (re.compile(r"(?<=\d)\s*[x×]\s*(?=\d)"), "*"),
    (re.compile(r"÷"), "/"),
    (re.compile(r"\^"), "**"),
]
_EXPR_RE = re.compile(r"[\d.\s()+\-*/]+")
_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}


def find_expression(text: str) -> str | None:
    """The longest arithmetic expression in ``text`` ("what is 17 times 23?" -> "17 * 23"), or None.

    Number words are not parsed; operator words (plus, minus, times, divided by, over, to the
    power of) and symbols (+ - * / x ÷ ^) are.
    """
    for pattern, op in _WORD_OPS:
        text = pattern.sub(f" {op} ", text)
    best = None
    for m in _EXPR_RE.finditer(text):
        candidate = " ".join(m.group(0).split()).strip(" .")
        if (re.search(r"\d", candidate) and re.search(r"\d\s*[()]*\s*(\*\*|[+\-*/])\s*[()]*\s*-?\d", candidate)
                and (best is None or len(candidate) > len(best))):
            best = candidate
    return best


def evaluate_expression(expr: str) -> float | int:
    """Evaluate +, -, *, /, ** over numbers with Python's grammar, nothing else (no names, no calls).

    Raises ValueError for anything else, a division by zero, an exponent above 64 in magnitude
    or a non-finite result. Integral results come back as ``int``.
    """
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not an arithmetic expression: {expr!r}") from exc

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            a, b = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and abs(b) > 64:
                raise ValueError("exponent too large")
            if isinstance(node.op, ast.Div) and b == 0:
                raise ValueError("division by zero")
            return _BINOPS[type(node.op)](a, b)
        raise ValueError(f"unsupported element in {expr!r}")

    try:
        value = ev(tree)
    except (OverflowError, ZeroDivisionError) as exc:
        raise ValueError(str(exc)) from exc
    if isinstance(value, complex) or not math.isfinite(value):
        raise ValueError(f"{expr!r} has no finite real value")
    value = float(f"{value:.12g}")  # stable decimal form (0.1 + 0.2 -> 0.3)
    return int(value) if value.is_integer() and abs(value) < 2 ** 53 else value


def _arithmetic(query: str) -> EffectOutcome:
    expr = find_expression(query)
    if expr is None:
        return EffectOutcome({"expression": None}, error="no arithmetic expression in the query")
    try:
        value = evaluate_expression(expr)
    except ValueError as exc:
        return EffectOutcome({"expression": expr}, error=str(exc))
    return EffectOutcome({"expression": expr}, sets={"answer": value}, output={"value": value})


_LOCATION_RE = re.compile(r"\b(?:in|at|for)\s+((?:[A-Z][\w'\-]*)(?:\s+[A-Z][\w'\-]*)*)")


def find_location(text: str) -> str | None:
    """The capitalised place after "in", "at" or "for" ("weather in New York today" -> "New York")."""
    m = _LOCATION_RE.search(text)
    return m.group(1) if m else None


def _location(query: str) -> EffectOutcome:
    loc = find_location(query)
    if loc is None:
        return EffectOutcome({"location": None}, error="no location (a capitalised place after in/at/for) in the query")
    return EffectOutcome({"location": loc}, sets={"location": loc}, output={"location": loc})


_EMAIL_RE = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")
_PATH_RE = re.compile(r"(?<![\w@.])(?:[\w\-]+/)*[\w\-]+\.[A-Za-z][A-Za-z0-9]{0,4}\b(?![@\w])")


def find_path(text: str) -> str | None:
    """The first file name or path with an extension ("read data/sales.csv" -> "data/sales.csv")."""
    for m in _PATH_RE.finditer(text):
        start, end = m.span()
        if "@" in text[max(0, start - 1):end + 1]:
            continue  # part of an e-mail address
        return m.group(0)
    return None


def _path(query: str) -> EffectOutcome:
    p = find_path(query)
    if p is None:
        return EffectOutcome({"path": None}, error="no file name in the query")
    return EffectOutcome({"path": p}, sets={"file_path": p}, output={"path": p})


def _recipient(query: str) -> EffectOutcome:
    m = _EMAIL_RE.search(query)
    to = m.group(0) if m else None
    return EffectOutcome({"to": to}, sets={"recipient": to}, output={"to": to})


def _query(query: str) -> EffectOutcome:
    return EffectOutcome({"query": query}, output={"query": query})


def _cached(fn: Callable[[str], EffectOutcome]) -> Callable[[str], EffectOutcome]:
    """Effects are pure functions of the query text, and a rollout calls them for the same few
    queries thousands of times: memoise them (callers copy what they keep)."""
    return functools.lru_cache(maxsize=4096)(fn)


# name -> (function of the query text, fields it may write)
EFFECTS: dict[str, tuple[Callable[[str], EffectOutcome], tuple[str, ...]]] = {
    "query": (_cached(_query), ()),
    "arithmetic": (_cached(_arithmetic), ("answer",)),
    "location": (_cached(_location), ("location",)),
    "path": (_cached(_path), ("file_path",)),
    "recipient": (_cached(_recipient), ("recipient",)),
}


# --- tool specs -----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=True)
class ToolSpec:
    name: str
    description: str = ""
    requires: tuple[str, ...] = ()
    requires_any: tuple[str, ...] = ()
    sets: Mapping[str, Any] = field(default_factory=dict)
    clears: tuple[str, ...] = ()
    effect: str | None = None
    ends_episode: bool = False

    __hash__ = None  # type: ignore[assignment]  # holds a dict

    def writes(self) -> tuple[str, ...]:
        """Every field a successful call may write (declared and computed)."""
        computed = EFFECTS[self.effect][1] if self.effect else ()
        return tuple(dict.fromkeys([*self.sets, *computed]))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "requires": list(self.requires),
                "requires_any": list(self.requires_any), "sets": dict(self.sets), "clears": list(self.clears),
                "effect": self.effect, "ends_episode": self.ends_episode}


DEFAULT_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec("search", "Search the web for the query; retrieves context.", sets={"context_retrieved": True},
             effect="query"),
    ToolSpec("file_reader", "Read the file named in the query.", sets={"file_read": True}, effect="path"),
    ToolSpec("database_query", "Query the database for the records the query asks about.",
             sets={"data_retrieved": True}, effect="query"),
    ToolSpec("summarizer", "Summarise retrieved context, file contents or records.",
             requires_any=("context_retrieved", "file_read", "data_retrieved"), sets={"summary_written": True}),
    ToolSpec("code_generator", "Write code for the specification in the query; invalidates earlier test results.",
             sets={"code_generated": True}, clears=("tests_run", "test_passed"), effect="query"),
    ToolSpec("test_runner", "Run the tests of the generated code.", requires=("code_generated",),
             sets={"tests_run": True, "test_passed": True}),
    ToolSpec("calculator", "Evaluate the arithmetic expression in the query.", effect="arithmetic"),
    ToolSpec("weather", "Look up the weather for the place named in the query.", sets={"weather_checked": True},
             effect="location"),
    ToolSpec("email_sender", "E-mail the written summary (to the address in the query, if any).",
             requires=("summary_written",), sets={"email_sent": True}, effect="recipient"),
    ToolSpec(FINISH, "Stop: the task is done (or cannot be done).", ends_episode=True),
)


def _is_json_value(v: Any, depth: int = 0) -> bool:
    if depth > 8:
        return False
    if v is None or isinstance(v, (bool, str)):
        return True
    if isinstance(v, (int, float)):
        return math.isfinite(v)
    if isinstance(v, (list, tuple)):
        return all(_is_json_value(x, depth + 1) for x in v)
    if isinstance(v, Mapping):
        return all(isinstance(k, str) and _is_json_value(x, depth + 1) for k, x in v.items())
    return False


def _field_names(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise InvalidArgument(where, "must be a list of state field names")
    out = []
    for i, name in enumerate(value):
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise InvalidArgument(f"{where}[{i}]", "must be a field name: lowercase letters, digits and _, "
                                                   "starting with a letter, at most 64 characters")
        out.append(name)
    return tuple(out)


def parse_tool(raw: Any, where: str) -> ToolSpec:
    """One tool from its JSON form (or a ``ToolSpec``), validated; errors name ``where``."""
    if isinstance(raw, ToolSpec):
        raw = raw.to_dict()
    if not isinstance(raw, Mapping):
        raise InvalidArgument(where, "must be an object {name, description, requires, requires_any, sets, clears, "
                                     "effect}")
    known = {"name", "description", "requires", "requires_any", "requiresAny", "sets", "clears", "effect",
             "ends_episode", "endsEpisode"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise InvalidArgument(f"{where}.{unknown[0]}", f"unknown tool property; expected one of {', '.join(sorted(known))}")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidArgument(f"{where}.name", "must be a tool name: lowercase letters, digits and _, starting with a "
                                               "letter, at most 64 characters")
    description = raw.get("description") or ""
    if not isinstance(description, str) or len(description) > 1000:
        raise InvalidArgument(f"{where}.description", "must be a string of at most 1000 characters")
    requires = _field_names(raw.get("requires") or [], f"{where}.requires")
    any_key = "requires_any" if "requires_any" in raw else "requiresAny"
    requires_any = _field_names(raw.get(any_key) or [], f"{where}.{any_key}")
    sets = raw.get("sets") or {}
    if not isinstance(sets, Mapping):
        raise InvalidArgument(f"{where}.sets", "must be an object {field: value}")
    for key, value in sets.items():
        _field_names([key], f"{where}.sets")
        if key in RESERVED_FIELDS:
            raise InvalidArgument(f"{where}.sets.{key}", f"is maintained by the environment ({', '.join(RESERVED_FIELDS)})")
        if not _is_json_value(value):
            raise InvalidArgument(f"{where}.sets.{key}", "must be a JSON value (finite numbers only)")
    clears = _field_names(raw.get("clears") or [], f"{where}.clears")
    for key in clears:
        if key in RESERVED_FIELDS:
            raise InvalidArgument(f"{where}.clears", f"cannot clear {key!r}: it is maintained by the environment")
    effect = raw.get("effect")
    if effect is not None and (not isinstance(effect, str) or effect not in EFFECTS):
        raise InvalidArgument(f"{where}.effect", f"unknown effect {effect!r}; valid effects: {', '.join(EFFECTS)}")
    end_key = "ends_episode" if "ends_episode" in raw else "endsEpisode"
    ends = raw.get(end_key, False)
    if not isinstance(ends, bool):
        raise InvalidArgument(f"{where}.{end_key}", "must be a boolean")
    if ends != (name == FINISH):
        raise InvalidArgument(f"{where}.{end_key}", f"only the {FINISH!r} tool ends a trajectory")
    if name == FINISH and (requires or requires_any or sets or clears or effect):
        raise InvalidArgument(where, f"the {FINISH!r} tool has no preconditions or effects")
    return ToolSpec(name, description, requires, requires_any, dict(sets), clears, effect, ends)


def parse_catalog(raw: Sequence[Any] | None, where: str = "tools") -> tuple[ToolSpec, ...]:
    """The catalog as the policy's action list: tools in the given order, ``finish`` last.

    ``None`` gives ``DEFAULT_TOOLS``. A custom catalog needs at least one tool besides ``finish``;
    ``finish`` is appended when missing.
    """
    if raw is None:
        return DEFAULT_TOOLS
    if isinstance(raw, (str, bytes, Mapping)) or not isinstance(raw, (list, tuple)):
        raise InvalidArgument(where, "must be a list of tool objects")
    tools = [parse_tool(t, f"{where}[{i}]") for i, t in enumerate(raw)]
    seen: set[str] = set()
    for i, t in enumerate(tools):
        if t.name in seen:
            raise InvalidArgument(f"{where}[{i}].name", f"duplicate tool name {t.name!r}")
        seen.add(t.name)
    finish = [t for t in tools if t.name == FINISH]
    others = [t for t in tools if t.name != FINISH]
    if not others:
        raise InvalidArgument(where, f"needs at least one tool besides {FINISH!r}")
    if len(others) + 1 > MAX_TOOLS:
        raise InvalidArgument(where, f"at most {MAX_TOOLS} tools (including {FINISH!r})")
    return tuple(others) + (finish[0] if finish else DEFAULT_TOOLS[-1],)


def producers(catalog: Sequence[ToolSpec], fields: Sequence[str]) -> set[str]:
    """Names of the tools that can write any of ``fields``."""
    wanted = set(fields)
    return {t.name for t in catalog if wanted.intersection(t.writes())}


def relevant_tools(catalog: Sequence[ToolSpec], expected_outcome: Mapping[str, Any]) -> frozenset[str]:
    """Tools on some dependency path to a field of ``expected_outcome``: the ones that write an
    expected field, plus (transitively) the ones that write a precondition of a relevant tool.
    An expected ``tools_used`` list makes the listed tools relevant. Used for ``tool_accuracy``."""
    by_name = {t.name: t for t in catalog}
    relevant = producers(catalog, [k for k in expected_outcome if k not in RESERVED_FIELDS])
    listed = expected_outcome.get("tools_used")
    if isinstance(listed, (list, tuple)):
        relevant |= {n for n in listed if isinstance(n, str) and n in by_name and n != FINISH}
    frontier = set(relevant)
    while frontier:
        needs: set[str] = set()
        for name in frontier:
            t = by_name[name]
            needs.update(t.requires, t.requires_any)
        frontier = producers(catalog, sorted(needs)) - relevant
        relevant |= frontier
    return frozenset(relevant)
