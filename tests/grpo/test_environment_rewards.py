import datetime as dt
import json

import numpy as np
import pytest

from trainhouse.core.errors import InvalidArgument
from trainhouse.core.grpo import (DEFAULT_TOOLS, GRPOConfig, RewardInput, ToolEnvironment, TrainingQuery,
                                    get_reward, matched_fields, parse_catalog, register_reward, relevant_tools)
from trainhouse.core.grpo.rewards import score
from trainhouse.core.grpo.tools import evaluate_expression, find_expression, find_location, find_path
from tests.grpo.tasks import make_tasks, plan_for


def env(max_steps=20):
    return ToolEnvironment(DEFAULT_TOOLS, max_steps)


def strip_times(steps):
    return [{k: v for k, v in s.items() if k not in ("timestamp", "duration_ms")} for s in steps]


# --- rewards ------------------------------------------------------------------------------------
def test_exact_and_partial_match():
    expected = {"test_passed": True, "answer": 42, "location": "Oslo"}
    final = {"test_passed": True, "answer": 42.0, "location": "oslo", "extra": 1}
    inp = RewardInput(final, expected, steps=3, gamma=0.9, step_penalty=0.01)
    assert get_reward("exact_match")(inp) == 0.0
    assert get_reward("partial_match")(inp) == pytest.approx(2 / 3)
    final["location"] = "Oslo"
    assert get_reward("exact_match")(inp) == 1.0 and get_reward("partial_match")(inp) == 1.0
    # a missing field does not match; booleans are not numbers
    assert matched_fields({"test_passed": 1}, {"test_passed": True}) == 0
    assert matched_fields({}, {"test_passed": False}) == 0
    # nested objects match on the expected keys, lists element-wise
    assert matched_fields({"r": {"a": 1, "b": 2}, "l": [1, 2]}, {"r": {"a": 1}, "l": [1, 2]}) == 2
    assert matched_fields({"l": [1, 2, 3]}, {"l": [1, 2]}) == 0


def test_step_cost_discounts_and_charges_steps():
    fn = get_reward("step_cost")
    solved = {"email_sent": True}
    r = lambda steps, gamma, penalty, final=solved: fn(RewardInput(final, {"email_sent": True}, steps, gamma, penalty))  # noqa: E731
    assert r(1, 0.9, 0.0) == pytest.approx(1.0)
    assert r(4, 0.9, 0.0) == pytest.approx(0.9 ** 3)
    assert r(4, 0.9, 0.01) == pytest.approx(0.9 ** 3 - 0.04)
    assert r(4, 1.0, 0.0) == pytest.approx(1.0)          # gamma 1: no discount
    assert r(3, 0.5, 0.02, {}) == pytest.approx(-0.06)   # unsolved: only the step cost
    assert r(2, 0.99, 0.01) > r(5, 0.99, 0.01)           # shorter solutions are worth more


def test_custom_reward_registry():
    register_reward("half_plus_steps", lambda inp: 0.5 + inp.steps, replace=True)
    assert get_reward("half_plus_steps")(RewardInput({}, {"a": 1}, 2, 0.9, 0.0)) == 2.5
    with pytest.raises(ValueError):
        register_reward("exact_match", lambda inp: 0.0, replace=True)  # built-ins stay
    with pytest.raises(InvalidArgument) as err:
        get_reward("missing")
    assert "exact_match" in err.value.message and err.value.field == "reward_function"
    register_reward("nan_reward", lambda inp: float("nan"), replace=True)
    with pytest.raises(InvalidArgument) as err:
        score(get_reward("nan_reward"), RewardInput({}, {"a": 1}, 1, 1.0, 0.0))
    assert "finite" in err.value.message


# --- environment ----------------------------------------------------------------------------------
def test_same_actions_same_episode():
    e = env()
    q = "email bob@example.com a summary of the orders table"
    plan = ["search", "test_runner", "database_query", "summarizer", "email_sender", "finish"]
    a, b = e.run(q, plan), e.run(q, plan)
    assert strip_times(a.steps) == strip_times(b.steps)
    assert a.final_state() == b.final_state()
    assert np.array_equal(a.state_vector(), b.state_vector())
    assert a.finished and a.done


def test_preconditions_make_order_matter():
    e = env()
    wrong = e.run("write a python function that sorts a list", ["test_runner", "code_generator", "finish"])
    assert wrong.steps[0]["result"]["ok"] is False and "code_generated" in wrong.steps[0]["result"]["error"]
    assert "test_passed" not in wrong.final_state()
    right = e.run("write a python function that sorts a list", ["code_generator", "test_runner", "finish"])
    assert right.final_state()["test_passed"] is True
    # new code invalidates the earlier test result
    again = e.run("write a python function that sorts a list", ["code_generator", "test_runner", "code_generator"])
    assert "test_passed" not in again.final_state() and again.steps[2]["result"]["changes"]["test_passed"] is None
    # summarizer needs something retrieved; e-mail needs a summary
    ep = e.run("mail it", ["email_sender", "summarizer", "search", "summarizer", "email_sender"])
    assert [s["result"]["ok"] for s in ep.steps] == [False, False, True, True, True]
    assert ep.final_state()["tools_used"] == ["search", "summarizer", "email_sender"]
    assert ep.final_state()["recipient"] is None


def test_computed_effects():
    assert find_expression("what is 17 times 23?") == "17 * 23"
    assert find_expression("compute (3 + 4) ^ 2 please") == "(3 + 4) ** 2"
    assert find_expression("sort a list of 10 numbers") is None
    assert evaluate_expression("0.1 + 0.2") == 0.3 and evaluate_expression("7 / 2") == 3.5
    with pytest.raises(ValueError):
        evaluate_expression("__import__('os')")
    with pytest.raises(ValueError):
        evaluate_expression("1 / 0")
    assert find_location("will it rain in New York tomorrow") == "New York"
    assert find_path("read data/sales.csv now") == "data/sales.csv"
    assert find_path("email ana@example.com") is None
    e = env()
    ep = e.run("what is 17 times 23?", ["calculator", "finish"])
    assert ep.final_state()["answer"] == 391 and ep.steps[0]["action"]["params"] == {"expression": "17 * 23"}
    failed = e.run("what is the meaning of life", ["calculator", "weather", "file_reader"])
    assert [s["result"]["ok"] for s in failed.steps] == [False, False, False]
    assert failed.final_state() == {"tools_used": [], "steps": 3}
    assert failed.state_vector()[-1] == 1.0  # last call failed


def test_step_limit_and_records():
    e = env(max_steps=3)
    ep = e.run("read the file notes.txt", ["search", "search", "search", "search"])
    assert len(ep.steps) == 3 and ep.done and not ep.finished
    step = ep.steps[1]
    assert set(step) == {"state", "action", "result", "timestamp", "duration_ms"}
    assert set(step["action"]) == {"tool", "params"} and step["action"]["tool"] == "search"
    assert step["state"]["tools_used"] == ["search"] and step["state"]["last_tool"] == "search"
    assert dt.datetime.fromisoformat(step["timestamp"].replace("Z", "+00:00")).tzinfo is not None
    assert step["duration_ms"] >= 0.0
    json.dumps(ep.steps)
    with pytest.raises(ValueError):
        e.step(ep, 0)


def test_every_generated_task_is_solved_by_its_plan_and_only_its_plan_fields():
    e = env(max_steps=6)
    for task in make_tasks(60, 3) + make_tasks(30, 4, held_out=True):
        q = TrainingQuery.parse(task, "q")
        ep = e.run(q.query, plan_for(task))
        assert matched_fields(ep.final_state(), q.expected_outcome) == len(q.expected_outcome), task
        # finishing at once solves nothing
        assert matched_fields(e.run(q.query, ["finish"]).final_state(), q.expected_outcome) == 0


def test_relevant_tools_follow_preconditions():
    assert relevant_tools(DEFAULT_TOOLS, {"test_passed": True}) == {"test_runner", "code_generator"}
    assert relevant_tools(DEFAULT_TOOLS, {"email_sent": True}) == {"email_sender", "summarizer", "search",
                                                                   "file_reader", "database_query"}
    assert relevant_tools(DEFAULT_TOOLS, {"answer": 3}) == {"calculator"}
    assert relevant_tools(DEFAULT_TOOLS, {"tools_used": ["weather"]}) == {"weather"}


def test_custom_catalog_environment():
    catalog = parse_catalog([{"name": "fetch", "sets": {"fetched": True}},
                             {"name": "approve", "requires": ["fetched"], "sets": {"approved": "yes"},
                              "clears": ["fetched"]}])
    e = ToolEnvironment(catalog, 5)
    ep = e.run("approve the thing", ["approve", "fetch", "approve", "approve"])
    assert [s["result"]["ok"] for s in ep.steps] == [False, True, True, False]
    assert ep.final_state() == {"approved": "yes", "tools_used": ["fetch", "approve"], "steps": 4}


@pytest.mark.parametrize("raw,field", [
    ({"query": "", "expected_outcome": {"a": 1}}, "q.query"),
    ({"query": "x", "expected_outcome": {}}, "q.expected_outcome"),
    ({"query": "x", "expectedOutcome": "yes"}, "q.expectedOutcome"),
    ({"query": "x", "expected_outcome": {"a": float("nan")}}, "q.expected_outcome.a"),
    ("x", "q"),
])
def test_bad_queries(raw, field):
    with pytest.raises(InvalidArgument) as err:
        TrainingQuery.parse(raw, "q")
    assert err.value.field == field


def test_config_catalog_matches_environment_actions():
    cfg = GRPOConfig(max_steps_per_trajectory=4)
    e = ToolEnvironment(cfg.catalog, cfg.max_steps_per_trajectory)
    assert e.names[-1] == "finish" and e.n_tools == len(DEFAULT_TOOLS) - 1
