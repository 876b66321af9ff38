"""Sharded GRPO rollouts (config ``rollout_shards``): the merged batch has the unsharded layout,
K > 1 is deterministic and resumes bit-exactly, and K = 1 samples exactly as before."""
import numpy as np
import pytest

from trainhouse.core.errors import InvalidArgument
from trainhouse.core.grpo import (GRPOConfig, GRPOTrainer, LocalRolloutPool, merge_batches, rollout,
                                    score_batch)
from trainhouse.core.grpo.rewards import get_reward
from trainhouse.core.trainer.checkpoint import load_checkpoint, save_checkpoint
from tests.grpo.test_training import SMALL, TRAIN, Recorder, same_weights, weights

DATA = TRAIN[:24]


def batch_key(batch):
    """Everything a rollout batch computes, without the wall-clock fields (timestamps, durations)."""
    trajs = [(t.trajectory_id, t.group_index, t.iteration, t.query.query, t.episode.actions, t.episode.succeeded,
              [(s["state"], s["action"], s["result"]) for s in t.episode.steps]) for t in batch.trajectories]
    arrays = {name: getattr(batch, name) for name in ("qidx", "S", "actions", "traj", "logp_old", "row_tokens")}
    return trajs, arrays, batch.Q.toarray(), batch.tokens, batch.n_groups, batch.group_size


def assert_same_batch(a, b):
    trajs_a, arrays_a, Q_a, *rest_a = batch_key(a)
    trajs_b, arrays_b, Q_b, *rest_b = batch_key(b)
    assert trajs_a == trajs_b and rest_a == rest_b and np.array_equal(Q_a, Q_b)
    for name in arrays_a:
        assert arrays_a[name].dtype == arrays_b[name].dtype and np.array_equal(arrays_a[name], arrays_b[name]), name


def history(result):
    timing = {"elapsed_s", "cost_usd"}  # wall-clock dependent by design
    return [{k: v for k, v in h.items() if k not in timing} for h in result.history]


class RecordingPool(LocalRolloutPool):
    def __init__(self):
        self.calls = []

    def map(self, policy, env, shards, group_size, *, id_prefix, iteration):
        self.calls.append([(s.first_group, len(s.queries), s.Q.shape[0], s.seed) for s in shards])
        return super().map(policy, env, shards, group_size, id_prefix=id_prefix, iteration=iteration)


class NoPool:
    name = "none"

    def map(self, *args, **kwargs):
        raise AssertionError("rollout_shards = 1 must not use the rollout pool")


def test_rollout_shards_config():
    assert GRPOConfig().rollout_shards == 1
    assert GRPOConfig.from_dict({"rolloutShards": 4.0}).rollout_shards == 4
    assert GRPOConfig.from_dict({"rollout_shards": 64}).to_dict()["rollout_shards"] == 64
    assert "rollout_shards" in GRPOConfig.help()
    for bad in (0, 65, 2.5, True, "2"):
        with pytest.raises(InvalidArgument) as err:
            GRPOConfig.from_dict({"rollout_shards": bad})
        assert err.value.field == "rollout_shards"
    with pytest.raises(InvalidArgument) as err:
        GRPOConfig.from_dict({"rolloutShards": 0})
    assert err.value.field == "rolloutShards"


def test_merged_greedy_shards_equal_the_unsharded_batch():
    # Greedy rollouts do not depend on a generator, so shards of one batch must reproduce it row for row.
    trainer = GRPOTrainer(GRPOConfig(**SMALL), DATA)
    policy = trainer.initial_policy()
    ids = np.arange(10)
    queries = [trainer.train_queries[i] for i in ids]
    Q = trainer.Q_train[ids]
    whole = rollout(policy, trainer.env, queries, Q, 4, None, id_prefix="traj-00001", iteration=1)
    parts = [rollout(policy, trainer.env, queries[lo:hi], Q[lo:hi], 4, None, id_prefix="traj-00001", iteration=1,
                     first_group=lo) for lo, hi in ((0, 3), (3, 7), (7, 10))]
    merged = merge_batches(parts)
    assert [t.trajectory_id for t in merged.trajectories] == [t.trajectory_id for t in whole.trajectories]
    assert [t.trajectory_id for t in merged.trajectories][4 * 3] == "traj-00001-003-00"
    assert [t.group_index for t in merged.trajectories] == [t.group_index for t in whole.trajectories]
    assert [t.episode.actions for t in merged.trajectories] == [t.episode.actions for t in whole.trajectories]
    assert merged.Q.shape == whole.Q.shape and np.array_equal(merged.Q.toarray(), whole.Q.toarray())
    assert (merged.n_groups, merged.group_size, merged.tokens) == (whole.n_groups, whole.group_size, whole.tokens)
    # Rows come shard by shard instead of step by step: the same rows once each trajectory's are together.
    a, b = np.argsort(whole.traj, kind="stable"), np.argsort(merged.traj, kind="stable")
    for name in ("traj", "qidx", "actions", "S", "row_tokens"):
        x, y = getattr(whole, name)[a], getattr(merged, name)[b]
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    np.testing.assert_allclose(merged.logp_old[b], whole.logp_old[a], rtol=0, atol=1e-9)
    score_batch(merged, trainer.env, get_reward("exact_match"), gamma=0.99, step_penalty=0.01)
    score_batch(whole, trainer.env, get_reward("exact_match"), gamma=0.99, step_penalty=0.01)
    assert [t.advantage for t in merged.trajectories] == [t.advantage for t in whole.trajectories]


def test_sharded_batch_has_the_unsharded_layout():
    G = SMALL["n_trajectories_per_query"]
    pool = RecordingPool()
    sharded = GRPOTrainer(GRPOConfig(rollout_shards=5, **SMALL), DATA, rollout_pool=pool)
    plain = GRPOTrainer(GRPOConfig(**SMALL), DATA, rollout_pool=NoPool())
    policy = plain.initial_policy()
    ids = np.random.default_rng(3).permutation(len(DATA))[:SMALL["batch_size"]]
    a, workers = sharded._rollout(policy, ids, np.random.default_rng(7), 12)
    b, none = plain._rollout(policy, ids, np.random.default_rng(7), 12)
    assert workers == ["in-process"] * 5 and none == []
    # five contiguous shards of 12 queries, as even as possible, each with its own seed
    (call,) = pool.calls
    assert [(first, n, rows) for first, n, rows, _ in call] == [(0, 2, 2), (2, 2, 2), (4, 3, 3), (7, 2, 2), (9, 3, 3)]
    assert len({seed for *_, seed in call}) == 5
    assert [t.trajectory_id for t in a.trajectories] == [t.trajectory_id for t in b.trajectories] == [
        f"traj-00012-{g:03d}-{j:02d}" for g in range(12) for j in range(G)]
    assert [t.group_index for t in a.trajectories] == [t.group_index for t in b.trajectories]
    assert [t.query for t in a.trajectories] == [t.query for t in b.trajectories]
    assert all(t.query is sharded.train_queries[ids[t.group_index]] for t in a.trajectories)
    assert a.Q.shape == b.Q.shape and np.array_equal(a.Q.toarray(), b.Q.toarray())
    assert (a.n_groups, a.group_size) == (b.n_groups, b.group_size) == (12, G)
    assert a.S.shape[1] == b.S.shape[1]
    R = len(a.traj)
    assert all(len(getattr(a, n)) == R for n in ("qidx", "S", "actions", "logp_old", "row_tokens"))
    assert R == sum(t.n_steps for t in a.trajectories) and a.tokens == int(a.row_tokens.sum())
    # every row points at its own trajectory's group, and rows of a trajectory are its steps in order
    assert np.array_equal(a.qidx, np.array([a.trajectories[i].group_index for i in a.traj]))
    for i, t in enumerate(a.trajectories):
        assert a.actions[a.traj == i].tolist() == t.episode.actions


def test_one_shard_samples_as_before():
    """K = 1 never touches the pool and draws from the run's generator exactly as the unsharded code:
    iteration 1 equals a hand-made rollout of the initial policy with that generator."""
    cfg = GRPOConfig(n_iterations=2, checkpoint_interval=2, **SMALL)
    rec = Recorder()
    trainer = GRPOTrainer(cfg, DATA, None, rec, rollout_pool=NoPool())
    trainer.train()
    rng = np.random.default_rng([cfg.seed, 0])
    ids = rng.permutation(len(DATA))[:cfg.batch_size]
    expected = rollout(trainer.initial_policy(), trainer.env, [trainer.train_queries[i] for i in ids],
                       trainer.Q_train[ids], cfg.n_trajectories_per_query, rng, id_prefix="traj-00001", iteration=1)
    got = rec.of("trajectories")[0]["trajectories"]
    assert [t["trajectory_id"] for t in got] == [t.trajectory_id for t in expected.trajectories]
    assert [[s["action"]["tool"] for s in t["steps"]] for t in got] == \
        [[trainer.actions[a] for a in t.episode.actions] for t in expected.trajectories]
    assert not [p for p in rec.of("log") if "shards" in p["message"]]


def test_sharded_training_is_deterministic_and_logs_its_placement_once():
    cfg = GRPOConfig(n_iterations=3, checkpoint_interval=3, rollout_shards=3, **SMALL)
    rec = Recorder()
    a = GRPOTrainer(cfg, DATA, None, rec).train()
    b = GRPOTrainer(cfg, DATA, None).train()
    assert same_weights(weights(a.policy), weights(b.policy)) and history(a) == history(b)
    assert a.metrics["trajectories_generated"] == 3 * cfg.batch_size * cfg.n_trajectories_per_query
    placement = [p["message"] for p in rec.of("log") if "shards" in p["message"]]
    assert placement == ["rollouts run as 3 shards per iteration on the local pool (in-process)"]
    one = GRPOTrainer(GRPOConfig.from_dict({**cfg.to_dict(), "rollout_shards": 1}), DATA).train()
    assert not same_weights(weights(a.policy), weights(one.policy))  # a different K samples differently


def test_sharded_resume_is_bit_exact(tmp_path):
    cfg = GRPOConfig(n_iterations=6, checkpoint_interval=3, rollout_shards=4, updates_per_batch=2, **SMALL)
    full = GRPOTrainer(cfg, DATA, None, Recorder(tmp_path / "full")).train()
    stopped = GRPOTrainer(cfg, DATA, None, Recorder(tmp_path / "stopped", stop_after=4)).train()
    stop_ckpt = [c for c in stopped.checkpoints if c.kind == "cancel"][0]
    assert stop_ckpt.checkpoint_id == "cancel-iter-00004"
    rec = Recorder(tmp_path / "resumed")
    resumed = GRPOTrainer(cfg, DATA, None, rec).train(resume_from=stop_ckpt.path)
    assert same_weights(weights(resumed.policy), weights(full.policy))
    assert history(resumed) == history(full)
    assert [p["iteration"] for p in rec.of("trajectories")] == [5, 6]
    # the shard count changes the sampling, so a checkpoint only resumes with the same one
    other = GRPOConfig.from_dict({**cfg.to_dict(), "rollout_shards": 2})
    with pytest.raises(InvalidArgument) as err:
        GRPOTrainer(other, DATA, None, Recorder(tmp_path / "x")).train(resume_from=stop_ckpt.path)
    assert "rollout_shards" in err.value.message


def test_checkpoint_from_before_rollout_shards_resumes(tmp_path):
    cfg = GRPOConfig(n_iterations=3, checkpoint_interval=3, **SMALL)
    full = GRPOTrainer(cfg, DATA, None, Recorder(tmp_path / "full")).train()
    stopped = GRPOTrainer(cfg, DATA, None, Recorder(tmp_path / "stopped", stop_after=1)).train()
    path = [c for c in stopped.checkpoints if c.kind == "cancel"][0].path
    state = load_checkpoint(path)
    del state.config["rollout_shards"]  # as written before the field existed
    save_checkpoint(path, state)
    resumed = GRPOTrainer(cfg, DATA, None, Recorder(tmp_path / "resumed")).train(resume_from=path)
    assert same_weights(weights(resumed.policy), weights(full.policy))
