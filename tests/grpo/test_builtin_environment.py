"""The built-in reference environment: its tools do real work (arithmetic, units, dates, a DuckDB
lookup, code run in a limited subprocess), the seed-003 example trains against measured outcomes,
and a trained policy beats both the untrained reference and a keyword-to-tool heuristic."""
import datetime as dt
import json
import os

import numpy as np
import pytest

from trainhouse.core.errors import InvalidArgument
from trainhouse.core.featurizer import FeaturizerConfig
from trainhouse.core.grpo import GRPOConfig, GRPOTrainer, evaluate_policy
from trainhouse.core.grpo.environment import TrainingQuery, matched_fields
from trainhouse.core.grpo.environments import make_environment
from trainhouse.core.grpo.environments.builtin import BuiltinEnvironment
from trainhouse.core.grpo.environments.code_library import TASKS
from trainhouse.core.grpo.environments.sandbox import SandboxLimits, run_cases
from trainhouse.core.grpo.evaluation import compare_with_baselines
from trainhouse.core.grpo.heuristic import HeuristicPolicy
from tests.grpo.builtin_tasks import COMPARISONS, PLANS, make_builtin_tasks
from tests.grpo.test_training import Recorder

SEED_EXAMPLE = {"query": "check that merge_sort passes the sort_list tests in under 100 ms",
                "expected_outcome": {"test_passed": True, "execution_time_ms": 100}}


@pytest.fixture(scope="module")
def env():
    return BuiltinEnvironment(6)


def test_config_names_the_environment():
    assert GRPOConfig().environment.type == "simulated" and GRPOConfig().to_dict()["environment"] == "simulated"
    cfg = GRPOConfig.from_dict({"environment": {"type": "builtin", "code_timeout_s": 2}})
    assert cfg.environment.code_timeout_s == 2.0
    assert GRPOConfig.from_dict(cfg.to_dict()) == cfg
    assert [t.name for t in make_environment(cfg).catalog] == ["calculator", "unit_converter", "date_calculator",
                                                               "table_lookup", "code_loader", "code_runner", "finish"]
    for bad, field in (({"environment": "real"}, "environment"),
                       ({"environment": {"type": "builtin", "code_memory_mb": 8}}, "environment.code_memory_mb"),
                       ({"environment": {"type": "http", "url": "ftp://x"}}, "environment.url"),
                       ({"environment": {"type": "http", "url": "http://h/?token=abc"}}, "environment.url"),
                       ({"environment": {"type": "http", "url": "http://h", "secret_env": "Bearer abc"}},
                        "environment.secret_env"),
                       ({"environment": {"type": "http", "url": "http://h", "max_calls": 0}}, "environment.max_calls"),
                       ({"environment": "builtin", "tools": [{"name": "x"}]}, "tools"),
                       ({"outcome_comparisons": {"answer": {"tolerance": -1}}}, "outcome_comparisons.answer.tolerance"),
                       ({"grader": {"url": "http://u:p@h"}}, "grader.url")):
        with pytest.raises(InvalidArgument) as err:
            GRPOConfig.from_dict(bad)
        assert err.value.field == field, (bad, err.value.field, err.value.message)


def test_tools_compute_real_answers(env):
    def answer(query, tool):
        ep = env.run(query, [tool, "finish"])
        return ep.final_state().get("answer"), ep.steps[0]

    assert answer("what is 1234 times 56 minus 7", "calculator")[0] == 1234 * 56 - 7
    value, step = answer("convert 12.5 km to miles", "unit_converter")
    assert step["action"]["params"] == {"value": 12.5, "from_unit": "km", "to_unit": "miles"}
    assert value == pytest.approx(12.5 * 1000 / 1609.344, rel=1e-6)
    assert answer("how many fahrenheit is 100 celsius", "unit_converter")[0] == pytest.approx(212.0)
    value, step = answer("convert 5 km to kilograms", "unit_converter")
    assert value is None and "cannot convert length" in step["result"]["error"]
    assert answer("convert 100 celsius to fahrenheit", "unit_converter")[0] == pytest.approx(212.0)
    assert answer("what date is 30 days after 2024-02-15", "date_calculator")[0] == (
        dt.date(2024, 2, 15) + dt.timedelta(days=30)).isoformat()
    assert answer("how many days between 2024-01-01 and 2025-01-01", "date_calculator")[0] == 366
    assert answer("what weekday was 2023-07-04", "date_calculator")[0] == "Tuesday"
    value, step = answer("what is the population of Buenos Aires", "table_lookup")
    assert value == 3075000 and step["action"]["params"] == {"table": "cities", "column": "population",
                                                             "key": "Buenos Aires"}
    assert answer("what is the country of Seoul", "table_lookup")[0] == "South Korea"
    value, step = answer("what is the population of Atlantis", "table_lookup")
    assert value is None and step["result"]["ok"] is False and "no row" in step["result"]["error"]
    # a tool whose arguments are not in the query fails; the failure is an observation
    ep = env.run("what is the population of Lisbon", ["calculator", "finish"])
    assert ep.steps[0]["result"]["ok"] is False and ep.final_state()["tools_used"] == []
    assert ep.state_vector()[-1] == 1.0 and ep.succeeded == [False, True]   # the policy saw the failure


def test_code_runner_measures_the_implementation(env):
    runs = {}
    for impl in ("merge_sort", "insertion_sort", "dedup_sort"):
        ep = env.run(f"check {impl} please", ["code_loader", "code_runner", "finish"])
        runner = ep.steps[1]
        assert runner["action"] == {"tool": "code_runner", "params": {"implementation": impl, "task": "sort_list"}}
        assert runner["result"]["ok"] is True and runner["result"]["output"]["cached"] is False
        runs[impl] = ep.final_state()
    total = len(TASKS["sort_list"].cases())
    assert runs["merge_sort"]["test_passed"] is True and runs["merge_sort"]["tests_passed"] == total
    assert runs["insertion_sort"]["test_passed"] is True
    assert runs["dedup_sort"]["test_passed"] is False and runs["dedup_sort"]["tests_passed"] < total
    # the quadratic sort is measured slower than the n log n one on the same cases
    assert runs["insertion_sort"]["execution_time_ms"] > 3 * runs["merge_sort"]["execution_time_ms"]
    # the seed's expected outcome is checked against the measurement: a time budget
    expected = SEED_EXAMPLE["expected_outcome"]
    for impl, state in runs.items():
        budget_met = state["execution_time_ms"] <= 100
        assert matched_fields(state, expected) == int(state["test_passed"]) + int(budget_met), impl
    # the runner needs loaded code
    ep = env.run("check merge_sort", ["code_runner"])
    assert ep.steps[0]["result"] == {"ok": False, "error": "no implementation loaded (call code_loader first)"}


def test_sandbox_limits_and_environment(monkeypatch):
    limits = SandboxLimits(wall_s=2.0, cpu_s=1, memory_mb=256)
    spin = run_cases("def f():\n    while True:\n        pass\n", "f", [{"args": [], "expected": None}], limits)
    assert spin["completed"] is False and spin["test_passed"] is False and spin["error"]
    hog = run_cases("def f():\n    return len(bytearray(1 << 30))\n", "f", [{"args": [], "expected": 1 << 30}], limits)
    assert hog["completed"] is True and hog["test_passed"] is False and "MemoryError" in hog["failures"][0]["error"]
    monkeypatch.setenv("TRAINHOUSE_TEST_SECRET", "do-not-leak")
    env_seen = run_cases("import os\ndef f():\n    return sorted(os.environ)\n", "f", [{"args": [], "expected": ["LANG"]}],
                         limits)
    assert env_seen["test_passed"] is True, env_seen   # the child sees no variable of the worker
    broken = run_cases("def f(:\n", "f", [{"args": [], "expected": 1}], limits)
    assert broken["completed"] is False and "does not load" in broken["error"]


def test_outcome_comparisons():
    from trainhouse.core.grpo.environment import field_matches

    assert field_matches("execution_time_ms", 100, 42.5) and not field_matches("execution_time_ms", 100, 100.5)
    assert not field_matches("execution_time_ms", 100, 42.5, {"execution_time_ms": "exact"})
    assert field_matches("answer", 7.7671, 7.76714, {"answer": {"rel_tolerance": 1e-4}})
    assert not field_matches("answer", 7.7671, 7.78, {"answer": {"rel_tolerance": 1e-4}})
    assert field_matches("answer", "2024-03-16", "2024-03-16", {"answer": {"rel_tolerance": 1e-4}})
    assert field_matches("score", 0.5, 0.9, {"score": "at_least"}) and not field_matches("score", 0.5, True,
                                                                                          {"score": "at_least"})


@pytest.fixture(scope="module")
def seed_example_run():
    data = [SEED_EXAMPLE,
            {"query": "check that builtin_sort passes the sort_list tests in under 100 ms",
             "expected_outcome": {"test_passed": True, "execution_time_ms": 100}},
            {"query": "does the dedup_sort implementation of sort_list pass its tests",
             "expected_outcome": {"test_passed": False}}]
    # Every code_runner call spawns and measures a fresh subprocess (cache_code_runs is off).
    cfg = GRPOConfig(environment="builtin", n_iterations=20, checkpoint_interval=20, batch_size=3,
                     n_trajectories_per_query=8, learning_rate=0.05, max_steps_per_trajectory=3, hidden_sizes=(32,),
                     featurizer=FeaturizerConfig(dim=512), seed=1)
    rec = Recorder()
    trainer = GRPOTrainer(cfg, data, None, rec, keep_trajectories=True)
    return cfg, trainer, trainer.train(), rec, data


def test_seed_example_trains_on_measured_outcomes(seed_example_run):
    cfg, trainer, result, rec, data = seed_example_run
    before = evaluate_policy(trainer.initial_policy(), data, config=cfg, env=trainer.env)
    after = evaluate_policy(result.policy, data, config=cfg, env=trainer.env)
    print(f"\nseed example: success {before['success_rate']:.2f} -> {after['success_rate']:.2f}")
    assert after["success_rate"] > before["success_rate"]
    merge = after["results"][0]
    assert merge["success"] and merge["tools"][:2] == ["code_loader", "code_runner"]
    assert merge["final_state"]["test_passed"] is True and 0 < merge["final_state"]["execution_time_ms"] <= 100
    # every trajectory's success is what the code runner measured
    runner_steps = 0
    for t in result.trajectories:
        final = {}
        for step in t["steps"]:
            if step["result"]["ok"] and step["action"]["tool"] != "finish":
                final.update(step["result"]["changes"])
            if step["action"]["tool"] == "code_runner" and step["result"]["ok"]:
                runner_steps += 1
                out = step["result"]["output"]
                assert out["cached"] is False and out["tests_total"] == len(TASKS["sort_list"].cases())
                assert step["result"]["changes"]["execution_time_ms"] == pytest.approx(out["execution_time_ms"],
                                                                                     abs=1e-3)
        expected = next(q["expected_outcome"] for q in data if q["query"] == t["query"])
        measured_ok = all(k in final and (final[k] <= v if k == "execution_time_ms" else final[k] == v)
                          for k, v in expected.items())
        assert t["success"] == measured_ok
    assert runner_steps > 20


def test_trajectory_export_shows_real_tool_calls(seed_example_run):
    _, _, result, rec, _ = seed_example_run
    exported = [t for p in rec.of("trajectories") for t in p["trajectories"]]
    assert len(exported) == len(result.trajectories)
    calls = [s for t in exported for s in t["steps"] if s["action"]["tool"] != "finish"]
    assert {s["action"]["tool"] for s in calls} >= {"code_loader", "code_runner"}
    for s in calls:
        assert set(s) == {"state", "action", "result", "timestamp", "duration_ms"}
        assert isinstance(s["action"]["params"], dict) and s["duration_ms"] > 0
        assert ("error" in s["result"]) != s["result"]["ok"]
    runs = [s for s in calls if s["action"]["tool"] == "code_runner" and s["result"]["ok"]]
    for s in runs:
        assert s["action"]["params"]["implementation"] in ("merge_sort", "builtin_sort", "dedup_sort")
        # the step's measured duration covers the subprocess the runner timed from outside
        assert s["duration_ms"] >= s["result"]["output"]["wall_ms"] > s["result"]["output"]["execution_time_ms"]
    loads = [s for s in calls if s["action"]["tool"] == "code_loader" and s["result"]["ok"]]
    assert all("def sort_list" in s["result"]["output"]["source"] for s in loads)
    json.dumps(exported)


def test_iteration_diagnostics(seed_example_run):
    cfg, _, result, rec, _ = seed_example_run
    steps = rec.of("step")
    for s in steps:
        m = s["metrics"]
        for key in ("avg_reward", "reward_std", "frac_reward_zero_std", "clip_fraction", "kl", "entropy",
                    "avg_steps", "tool_error_rate", "zero_std_streak"):
            assert key in m, key
        assert 0 <= m["tool_error_rate"] <= 1 and 1 <= m["avg_steps"] <= cfg.max_steps_per_trajectory
    names = {p["name"] for p in rec.of("metric")}
    assert {"reward_std", "clip_fraction", "entropy", "avg_steps", "tool_error_rate"} <= names
    assert [h["iteration"] for h in result.history] == list(range(1, cfg.n_iterations + 1))


def test_no_reward_spread_fails_early(tmp_path):
    from trainhouse.core.grpo.trainer import NoLearningSignal

    cfg = GRPOConfig(environment="builtin", n_iterations=50, batch_size=2, n_trajectories_per_query=4,
                     max_steps_per_trajectory=3, hidden_sizes=(8,), featurizer=FeaturizerConfig(dim=256),
                     zero_std_patience=3)
    rec = Recorder(tmp_path)
    impossible = [{"query": "what is 2 plus 2", "expected_outcome": {"answer": 5}},
                  {"query": "what is the population of Lisbon", "expected_outcome": {"answer": 1}}]
    with pytest.raises(NoLearningSignal) as err:
        GRPOTrainer(cfg, impossible, None, rec).train()
    assert err.value.reason == "no_reward_spread" and "3 consecutive iterations" in err.value.message
    assert [s["iteration"] for s in rec.of("step")] == [1, 2, 3]
    assert [c["kind"] for c in rec.of("checkpoint")][-1] == "no_signal"
    assert os.path.exists(err.value.metadata["checkpoint"])


def test_trained_policy_beats_reference_and_heuristic():
    train = make_builtin_tasks(60, seed=0)
    held_out = make_builtin_tasks(80, seed=1, held_out=True)
    assert not {q["query"] for q in train} & {q["query"] for q in held_out}
    cfg = GRPOConfig(environment={"type": "builtin", "cache_code_runs": True}, outcome_comparisons=COMPARISONS,
                     n_iterations=30, checkpoint_interval=30, batch_size=10, n_trajectories_per_query=8,
                     learning_rate=0.03, max_steps_per_trajectory=5, hidden_sizes=(32,),
                     featurizer=FeaturizerConfig(dim=1024), seed=0)
    trainer = GRPOTrainer(cfg, train, held_out)
    result = trainer.train()
    out = compare_with_baselines(result.policy, trainer.initial_policy(), train, held_out, cfg, env=trainer.env)
    ref, heur = out["reference"], out["heuristic"]
    print(f"\nheld-out success: trained {out['candidate']['success_rate']:.3f}, reference "
          f"{ref['baseline']['success_rate']:.3f} (p {ref['p_value']:.2g}), heuristic "
          f"{heur['baseline']['success_rate']:.3f} (p {heur['p_value']:.2g})")
    assert ref["success_rate_improvement"] >= 0.30 and ref["p_value"] < 0.01
    assert heur["success_rate_improvement"] > 0 and heur["p_value"] < 0.01
    assert heur["improved_queries"] > heur["regressed_queries"]
    assert out["queries_compared"] == len(held_out)


def test_heuristic_learns_keyword_rules_from_training_queries(env):
    train = make_builtin_tasks(30, seed=0)
    h = HeuristicPolicy.fit(env, [TrainingQuery.parse(q, "q") for q in train], COMPARISONS)
    names = env.names
    assert names[h.choose("what is 5 times 3")] == "calculator"
    assert names[h.choose("what is the population of Dublin")] == "table_lookup"
    assert names[h.choose("convert 3 feet to meters")] == "unit_converter"
    # one tool then finish: a two-step plan (load, then run) is out of its reach
    ep_tools = evaluate_policy(h, [make_builtin_tasks(5, seed=3)[4]], config=GRPOConfig(environment="builtin"),
                               env=env)["results"][0]["tools"]
    assert len(ep_tools) == 2 and ep_tools[-1] == "finish"
    assert np.isfinite(h.action_log_probs(np.array([0]), np.array([0]), np.zeros((1, 13)))).all()
    assert PLANS[4] == ["code_loader", "code_runner", "finish"]
