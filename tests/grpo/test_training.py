"""GRPO training end to end: it learns (on held-out queries), resumes bit-exactly, respects the
budget, and streams trajectories in the seed-003 export shape."""
import datetime as dt
import json
import os

import numpy as np
import pytest

from trainhouse.core.errors import InvalidArgument
from trainhouse.core.featurizer import FeaturizerConfig
from trainhouse.core.grpo import (BudgetExceeded, GRPOConfig, GRPOTrainer, PriceModel, baseline_comparison,
                                    compare_policies, evaluate_policy, load_policy_checkpoint)
from tests.grpo.tasks import make_tasks

SMALL = dict(batch_size=12, n_trajectories_per_query=8, learning_rate=0.03, max_steps_per_trajectory=6,
             hidden_sizes=(32,), featurizer=FeaturizerConfig(dim=1024))

TRAIN = make_tasks(120, seed=0)
HELD_OUT = make_tasks(60, seed=1, held_out=True)


class Recorder:
    def __init__(self, checkpoint_dir=None, stop_after=None, stop_kind="cancel"):
        self.checkpoint_dir = str(checkpoint_dir) if checkpoint_dir else None
        self.stop_checkpoint_kind = stop_kind
        self.stop_after = stop_after
        self.events = []

    def on_event(self, kind, payload):
        json.dumps(payload)  # every payload is JSON-ready
        self.events.append((kind, payload))

    def should_stop(self):
        steps = sum(1 for k, _ in self.events if k == "step")
        return self.stop_after is not None and steps >= self.stop_after

    def of(self, kind):
        return [p for k, p in self.events if k == kind]


def weights(policy):
    return [a.copy() for a in policy.mlp.arrays()]


def same_weights(a, b):
    return len(a) == len(b) and all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def trained():
    cfg = GRPOConfig(n_iterations=100, checkpoint_interval=20, **SMALL)
    rec = Recorder()
    trainer = GRPOTrainer(cfg, TRAIN, HELD_OUT, rec)
    result = trainer.train()
    return cfg, trainer, result, rec


def test_success_on_held_out_queries_rises_by_30_points(trained):
    cfg, trainer, result, _ = trained
    assert not {q["query"] for q in HELD_OUT} & {q["query"] for q in TRAIN}
    before = evaluate_policy(trainer.initial_policy(), HELD_OUT, config=cfg)
    after = evaluate_policy(result.policy, HELD_OUT, config=cfg)
    print(f"\nheld-out success rate: untrained {before['success_rate']:.3f} -> trained {after['success_rate']:.3f}; "
          f"avg reward {before['avg_reward']:.3f} -> {after['avg_reward']:.3f}; "
          f"tool accuracy {before['tool_accuracy']:.3f} -> {after['tool_accuracy']:.3f}")
    assert after["success_rate"] - before["success_rate"] >= 0.30
    assert result.metrics["success_rate"] == after["success_rate"]          # final metrics are held-out, greedy
    assert result.metrics["baseline_success_rate"] == before["success_rate"]
    comparison = compare_policies(before, after)
    assert comparison["success_rate_improvement"] >= 0.30
    assert comparison["p_value"] < 0.001 and comparison["statistically_significant"]
    assert comparison["improved_queries"] > comparison["regressed_queries"]
    assert len(after["results"]) == len(HELD_OUT) and after["queries_evaluated"] == len(HELD_OUT)


def test_metrics_and_events(trained):
    cfg, _, result, rec = trained
    m = result.metrics
    for key in ("success_rate", "avg_reward", "avg_steps", "tool_accuracy", "train_loss", "kl",
                "trajectories_generated", "cost_usd"):
        assert isinstance(m[key], (int, float)), key
    assert m["trajectories_generated"] == cfg.n_iterations * cfg.batch_size * cfg.n_trajectories_per_query
    assert 1 <= m["avg_steps"] <= cfg.max_steps_per_trajectory and 0 <= m["tool_accuracy"] <= 1
    assert m["cost_usd"] > 0 and m["tokens_processed"] > 0 and m["compute_seconds"] > 0
    assert not result.stopped and result.stop_reason is None
    steps = rec.of("step")
    assert [s["iteration"] for s in steps] == list(range(1, cfg.n_iterations + 1))
    assert all(s["total_iterations"] == cfg.n_iterations and s["step"] == s["iteration"] for s in steps)
    assert {"avg_reward", "success_rate", "train_loss", "kl", "frac_reward_zero_std"} <= set(steps[0]["metrics"])
    assert "eval_success_rate" in steps[19]["metrics"] and "eval_success_rate" not in steps[18]["metrics"]
    names = {p["name"] for p in rec.of("metric")}
    assert {"avg_reward", "frac_reward_zero_std", "eval_success_rate", "baseline_success_rate"} <= names
    # the learning signal is visible in the training rewards too
    first, last = np.mean([s["metrics"]["avg_reward"] for s in steps[:10]]), \
        np.mean([s["metrics"]["avg_reward"] for s in steps[-10:]])
    assert last > first + 0.3
    assert result.best_policy is not None and m["best_success_rate"] >= m["baseline_success_rate"]


def test_trajectories_have_the_seed_003_export_shape(trained):
    cfg, _, _, rec = trained
    batches = rec.of("trajectories")
    assert len(batches) == cfg.n_iterations
    ids = set()
    for payload in batches[:3] + batches[-2:]:
        trajs = payload["trajectories"]
        assert len(trajs) == cfg.batch_size * cfg.n_trajectories_per_query
        for t in trajs:
            assert set(t) == {"trajectory_id", "query", "steps", "reward", "normalized_reward", "advantage",
                              "success", "execution_time_ms", "iteration", "group_index"}
            assert t["iteration"] == payload["iteration"] and 0 <= t["group_index"] < cfg.batch_size
            assert isinstance(t["query"], str) and isinstance(t["success"], bool)
            assert isinstance(t["reward"], float) and isinstance(t["advantage"], float)
            assert t["normalized_reward"] == t["advantage"] and t["execution_time_ms"] >= 0
            assert 1 <= len(t["steps"]) <= cfg.max_steps_per_trajectory
            for s in t["steps"]:
                assert set(s) == {"state", "action", "result", "timestamp", "duration_ms"}
                assert set(s["action"]) == {"tool", "params"} and isinstance(s["action"]["params"], dict)
                assert isinstance(s["state"], dict) and isinstance(s["result"], dict)
                dt.datetime.fromisoformat(s["timestamp"].replace("Z", "+00:00"))
                assert s["duration_ms"] >= 0
            ids.add(t["trajectory_id"])
        # advantages are standardised within each group
        for g in range(cfg.batch_size):
            adv = [t["advantage"] for t in trajs if t["group_index"] == g]
            assert abs(sum(adv)) < 1e-6
    assert len(ids) == 5 * cfg.batch_size * cfg.n_trajectories_per_query  # unique ids


def test_resume_is_bit_exact(tmp_path):
    cfg = GRPOConfig(n_iterations=8, checkpoint_interval=3, updates_per_batch=2, kl_estimator="exact", **SMALL)
    full = GRPOTrainer(cfg, TRAIN, HELD_OUT, Recorder(tmp_path / "full")).train()
    assert [c.checkpoint_id for c in full.checkpoints if c.kind == "interval"] == ["iter-00003", "iter-00006"]

    rec = Recorder(tmp_path / "stopped", stop_after=4)
    stopped = GRPOTrainer(cfg, TRAIN, HELD_OUT, rec).train()
    assert stopped.stopped and stopped.stop_reason == "cancel"
    stop_ckpt = [c for c in stopped.checkpoints if c.kind == "cancel"][0]
    assert stop_ckpt.checkpoint_id == "cancel-iter-00004" and os.path.exists(stop_ckpt.path)
    assert [p["kind"] for p in rec.of("checkpoint")][-1] == "cancel"

    resumed = GRPOTrainer(cfg, TRAIN, HELD_OUT, Recorder(tmp_path / "resumed")).train(resume_from=stop_ckpt.path)
    assert same_weights(weights(resumed.policy), weights(full.policy))
    # from an interval checkpoint of the uninterrupted run, with a different checkpoint interval
    interval = [c for c in full.checkpoints if c.checkpoint_id == "iter-00006"][0]
    cfg2 = GRPOConfig.from_dict({**cfg.to_dict(), "checkpoint_interval": 5})
    again = GRPOTrainer(cfg2, TRAIN, HELD_OUT, Recorder(tmp_path / "again")).train(resume_from=interval.path)
    assert same_weights(weights(again.policy), weights(full.policy))
    keys = ("avg_reward", "success_rate", "train_loss", "kl", "eval_success_rate")
    strip = lambda h: [{k: e.get(k) for k in keys} for e in h]  # noqa: E731
    assert strip(resumed.history) == strip(full.history)
    assert resumed.metrics["trajectories_generated"] == full.metrics["trajectories_generated"]
    # the checkpointed policy is loadable for evaluation
    final = [c for c in full.checkpoints if c.kind == "final"][0]
    assert same_weights(weights(load_policy_checkpoint(final.path)), weights(full.policy))
    # a different config cannot resume it
    other = GRPOConfig.from_dict({**cfg.to_dict(), "learning_rate": 0.01})
    with pytest.raises(InvalidArgument) as err:
        GRPOTrainer(other, TRAIN, HELD_OUT, Recorder(tmp_path / "x")).train(resume_from=interval.path)
    assert err.value.field == "resume_from" and "learning_rate" in err.value.message


def test_same_seed_same_policy_different_seed_different_policy():
    cfg = GRPOConfig(n_iterations=3, checkpoint_interval=3, **SMALL)
    a = GRPOTrainer(cfg, TRAIN[:24], None).train()
    b = GRPOTrainer(cfg, TRAIN[:24], None).train()
    c = GRPOTrainer(GRPOConfig.from_dict({**cfg.to_dict(), "seed": 1}), TRAIN[:24], None).train()
    assert same_weights(weights(a.policy), weights(b.policy))
    assert not same_weights(weights(a.policy), weights(c.policy))
    assert a.metrics["evaluated_on"] == "training"


def test_budget_stop_with_checkpoint_and_warnings(tmp_path):
    # Price tokens only, so the cost is a deterministic function of the computation.
    prices = PriceModel(usd_per_compute_second=0.0, usd_per_1k_tokens=1.0)
    cfg = GRPOConfig(n_iterations=6, checkpoint_interval=10, **SMALL)
    free = GRPOTrainer(cfg, TRAIN, HELD_OUT, Recorder(tmp_path / "free"), price_model=prices).train()
    costs = [h["cost_usd"] for h in free.history]
    assert all(b > a for a, b in zip(costs, costs[1:]))
    assert free.metrics["cost_usd"] > costs[-1] and free.metrics["tokens_processed"] > 0
    budget = (costs[2] + costs[3]) / 2          # crossed during iteration 4
    capped = GRPOConfig.from_dict({**cfg.to_dict(), "max_budget_usd": budget})
    rec = Recorder(tmp_path / "capped")
    with pytest.raises(BudgetExceeded) as err:
        GRPOTrainer(capped, TRAIN, HELD_OUT, rec, price_model=prices).train()
    assert err.value.reason == "budget_exceeded" and err.value.grpc_code == "RESOURCE_EXHAUSTED"
    assert err.value.metadata["iteration"] == "4" and float(err.value.metadata["cost_usd"]) > budget
    warnings = rec.of("budget")
    assert [w["level"] for w in warnings] == ["warning_75", "warning_90"]
    assert all(w["budget_usd"] == budget for w in warnings)
    assert warnings[0]["cost_usd"] >= 0.75 * budget and warnings[1]["cost_usd"] >= 0.9 * budget
    assert [s["iteration"] for s in rec.of("step")] == [1, 2, 3, 4]
    ckpt = rec.of("checkpoint")[-1]
    assert ckpt["kind"] == "budget" and ckpt["checkpoint_id"] == "budget-iter-00004" and ckpt["step"] == 4
    assert err.value.metadata["checkpoint"] == ckpt["path"] and os.path.exists(ckpt["path"])
    # resuming with the same budget stops at once; with a larger one it finishes like the free run
    again = Recorder(tmp_path / "again")
    with pytest.raises(BudgetExceeded):
        GRPOTrainer(capped, TRAIN, HELD_OUT, again, price_model=prices).train(resume_from=ckpt["path"])
    assert not again.of("step") and not again.of("budget")   # warnings are not repeated
    raised = GRPOConfig.from_dict({**cfg.to_dict(), "max_budget_usd": 1e6})
    done = GRPOTrainer(raised, TRAIN, HELD_OUT, Recorder(tmp_path / "done"), price_model=prices).train(
        resume_from=ckpt["path"])
    assert not done.stopped and same_weights(weights(done.policy), weights(free.policy))


def test_zero_budget_stops_after_the_first_iteration():
    rec = Recorder()
    with pytest.raises(BudgetExceeded):
        GRPOTrainer(GRPOConfig(n_iterations=5, max_budget_usd=0, **SMALL), TRAIN[:24], None, rec).train()
    assert [s["iteration"] for s in rec.of("step")] == [1]


def test_gamma_and_step_cost_change_the_rewards():
    base = dict(SMALL, n_iterations=1, reward_function="step_cost", step_penalty=0.0)
    rewards = {}
    for gamma in (1.0, 0.5):
        rec = Recorder()
        GRPOTrainer(GRPOConfig(gamma=gamma, **base), TRAIN[:24], None, rec).train()
        rewards[gamma] = [t["reward"] for t in rec.of("trajectories")[0]["trajectories"] if t["success"]]
    assert rewards[1.0] and all(r == 1.0 for r in rewards[1.0])
    assert any(r < 1.0 for r in rewards[0.5])   # solved in more than one step: discounted


def test_baseline_comparison_helper(trained):
    cfg, trainer, result, _ = trained
    out = baseline_comparison(trainer.initial_policy(), result.policy, HELD_OUT[:30], config=cfg)
    assert out["candidate"]["success_rate"] > out["baseline"]["success_rate"]
    assert 0.0 <= out["p_value"] <= 1.0 and 0.0 <= out["reward_p_value"] <= 1.0
    with pytest.raises(InvalidArgument):
        compare_policies(evaluate_policy(result.policy, HELD_OUT[:3], config=cfg),
                         evaluate_policy(result.policy, HELD_OUT[3:6], config=cfg))


def test_kept_trajectories_diagnostics_and_catalog_mismatch():
    rec = Recorder()
    queries = TRAIN[:10] + [{"query": "launch the rocket", "expected_outcome": {"rocket_launched": True}}]
    cfg = GRPOConfig(n_iterations=2, batch_size=4, n_trajectories_per_query=2, **{k: v for k, v in SMALL.items()
                                                                                  if k not in ("batch_size", "n_trajectories_per_query")})
    result = GRPOTrainer(cfg, queries, None, rec, keep_trajectories=True).train()
    assert len(result.trajectories) == 2 * 4 * 2 and {t["iteration"] for t in result.trajectories} == {1, 2}
    warnings = [p["message"] for p in rec.of("log") if p["level"] == "warning"]
    assert any("can never succeed" in w and "launch the rocket" in w for w in warnings)
    custom = GRPOConfig(tools=[{"name": "lookup", "sets": {"found": True}}])
    with pytest.raises(InvalidArgument) as err:
        evaluate_policy(result.policy, TRAIN[:2], config=custom)
    assert err.value.field == "tools"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow is the point
def test_non_finite_update_raises_diverged():
    from trainhouse.core.grpo import TrainingDiverged, register_reward
    register_reward("astronomical", lambda inp: 1e300 if inp.success else 0.0, replace=True)
    cfg = GRPOConfig(n_iterations=3, reward_function="astronomical", scale_rewards="none", max_grad_norm=None,
                     **SMALL)
    with pytest.raises(TrainingDiverged) as err:
        GRPOTrainer(cfg, TRAIN[:24], None, Recorder()).train()
    assert err.value.reason == "diverged" and "learning_rate" in err.value.message
