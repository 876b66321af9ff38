"""few_shot, transfer and reinforcement each do what DESIGN.md promises, measured on held-out data."""
import numpy as np
import pytest

from trainhouse.core.errors import InvalidArgument
from trainhouse.core.featurizer import FeaturizerConfig
from trainhouse.core.onnx_model import OnnxModel
from trainhouse.core.trainer import (FewShotConfig, FewShotTrainer, ReinforcementConfig, ReinforcementTrainer,
                                       SupervisedConfig, SupervisedTrainer, TrainedModel, TransferConfig,
                                       TransferTrainer, export_onnx_bytes, parse_feedback)

SMALL = FeaturizerConfig(dim=4096)
LABELS = ["reset_password", "cancel_order", "track_order", "refund", "human_agent", "update_payment"]


def _accuracy(model, test):
    return float(np.mean([p == e.expected_output for (p, _), e in zip(model.predict([e.input for e in test]), test)]))


def _per_output(examples, k):
    out, seen = [], {}
    for e in examples:
        if seen.get(e.expected_output, 0) < k:
            out.append(e)
            seen[e.expected_output] = seen.get(e.expected_output, 0) + 1
    return out


def test_few_shot_beats_supervised_from_scratch_on_three_examples_per_output(intents):
    test = intents(100, per_intent=30)
    few_shot, scratch, scratch_all = [], [], []
    for seed in range(6):  # averaged over six draws of the three examples
        data = _per_output(intents(10 + seed, per_intent=10), 3)
        assert len(data) == 18
        few_shot.append(_accuracy(FewShotTrainer(FewShotConfig(seed=seed), data).train().model, test))
        # "plain" supervised holding 20 % out for validation (no refit on all the data) ...
        scratch.append(_accuracy(SupervisedTrainer(SupervisedConfig(seed=seed, refit=False), data).train().model, test))
        # ... and with every one of the 18 examples used for training
        scratch_all.append(_accuracy(SupervisedTrainer(SupervisedConfig(seed=seed, validation_split=0.0),
                                                       data).train().model, test))
    assert np.mean(few_shot) >= np.mean(scratch) + 0.05, (few_shot, scratch)
    assert sum(f > s for f, s in zip(few_shot, scratch)) >= 5
    assert np.mean(few_shot) >= np.mean(scratch_all) + 0.02, (few_shot, scratch_all)


def test_few_shot_works_from_one_example_and_initialises_from_prototypes(intents):
    data = _per_output(intents(7, per_intent=5), 1)
    trainer = FewShotTrainer(FewShotConfig(epochs=1, learning_rate=1e-9), data)
    init = trainer._init_mlp()
    W, b = init.params[0]
    assert W.shape == (FeaturizerConfig().dim, 6) and not b.any()
    np.testing.assert_allclose(np.linalg.norm(W, axis=0), 10.0, rtol=1e-5)  # prototypeScale * unit prototype
    model = trainer.train().model
    # With one example per output, each example is closest to its own prototype.
    assert [p for p, _ in model.predict([e.input for e in data])] == [e.expected_output for e in data]
    assert model.metadata["paradigm"] == "few_shot" and model.metadata["prototype_init"] == "linear_head"
    hidden = FewShotTrainer(FewShotConfig(hidden_sizes=(16,), epochs=2), data).train()
    assert hidden.model.hidden_sizes == (16,) and hidden.model.metadata["prototype_init"] == "projected"


def _base(intents, seed):
    old = set(LABELS[:4])
    data = intents(20 + seed, per_intent=20)
    base = SupervisedTrainer(SupervisedConfig(epochs=10, featurizer=SMALL, seed=seed, learning_rate=0.01,
                                              validation_split=0.0),
                             [e for e in data if e.expected_output in old]).train().model
    return data, TrainedModel.from_onnx_bytes(export_onnx_bytes(base))  # the path the service uses


def test_transfer_reaches_the_accuracy_in_fewer_epochs_than_from_scratch(intents):
    def epochs_to(history, target):
        return next((h["epoch"] for h in history if h["validation_accuracy"] >= target), 99)
    transfer_epochs, scratch_epochs = [], []
    for seed in range(3):
        data, base = _base(intents, seed)
        held_out = intents(200 + seed, per_intent=20)
        common = dict(epochs=6, early_stopping=False, scheduler_type="constant", seed=seed)
        scratch = SupervisedTrainer(SupervisedConfig(featurizer=SMALL, **common), data, held_out).train()
        transfer = TransferTrainer(TransferConfig(**common), base, data, held_out).train()
        assert transfer.model.labels[:4] == base.labels and set(transfer.model.labels) == set(LABELS)
        transfer_epochs.append(epochs_to(transfer.history, 0.9))
        scratch_epochs.append(epochs_to(scratch.history, 0.9))
    assert all(t <= s for t, s in zip(transfer_epochs, scratch_epochs)), (transfer_epochs, scratch_epochs)
    assert sum(transfer_epochs) < sum(scratch_epochs), (transfer_epochs, scratch_epochs)


def test_transfer_freeze_hidden_and_featurizer_rules(intents, tmp_path):
    data, base = _base(intents, 0)
    frozen = TransferTrainer(TransferConfig(epochs=2, freeze_hidden=True), base, data).train().model
    assert np.array_equal(frozen.params[0][0], base.params[0][0]) and np.array_equal(frozen.params[0][1],
                                                                                       base.params[0][1])
    assert not np.array_equal(frozen.params[1][0][:, :4], base.params[1][0])
    assert frozen.metadata["new_outputs"] == LABELS[4:] and frozen.metadata["freeze_hidden"] is True
    moving = TransferTrainer(TransferConfig(epochs=2), base, data).train().model
    assert not np.array_equal(moving.params[0][0], base.params[0][0])
    with pytest.raises(InvalidArgument) as err:
        TransferTrainer(TransferConfig.from_dict({"featurizer": {"dim": 8192}}), base, data)
    assert err.value.field == "featurizer"
    with pytest.raises(InvalidArgument) as err:
        TransferTrainer(TransferConfig.from_dict({"hiddenSizes": [8]}), base, data)
    assert err.value.field == "hiddenSizes"
    same = TransferConfig.from_dict({"featurizer": SMALL.to_dict(), "hiddenSizes": [64], "epochs": 1})
    TransferTrainer(same, base, data)  # restating the base's settings is fine
    path = tmp_path / "m.onnx"
    path.write_bytes(export_onnx_bytes(base))
    again = TrainedModel.from_onnx_model(OnnxModel.from_path(str(path)))
    assert again.labels == base.labels and all(np.array_equal(a[0], b[0]) for a, b in zip(again.params, base.params))


def _bandit_records(intents, seed, per_intent, policy):
    rng = np.random.default_rng(seed)
    records = []
    for e in intents(seed, per_intent=per_intent):
        action, propensity, reward = policy(e.expected_output, rng)
        records.append({"input": e.input, "output": action, "propensity": propensity, **reward})
    return records


def _greedy_value(model, test, reward):
    return float(np.mean([reward(e.expected_output, p) for (p, _), e in
                          zip(model.predict([e.input for e in test]), test)]))


def test_reinforcement_learns_a_policy_from_ratings(intents):
    def uniform(true, rng):
        a = LABELS[int(rng.integers(6))]
        return a, 1 / 6, {"rating": 5 if a == true else 1}
    test = intents(300, per_intent=20)
    reward = lambda t, p: 1.0 if t == p else -1.0  # noqa: E731  (rating 5 -> +1, rating 1 -> -1)
    uniform_value = (1 - 5) / 6
    values = []
    for seed in range(2):
        records = _bandit_records(intents, 30 + seed, 25, uniform)
        result = ReinforcementTrainer(ReinforcementConfig(epochs=10, featurizer=SMALL, seed=seed), records).train()
        values.append(_greedy_value(result.model, test, reward))
        assert result.model.metadata["kind"] == "policy"
        assert result.metrics["validation_reward"] is not None
    assert np.mean(values) >= uniform_value + 0.8, values


def test_importance_weighting_corrects_a_biased_logging_policy(intents):
    """The logger serves a 'decent' output (reward 0.8) 85 % of the time and the best one (reward 1)
    5 %: without importance weights the policy learns the logger's habit; with them, the best output."""
    decent = lambda t: LABELS[(LABELS.index(t) + 1) % 6]  # noqa: E731

    def reward(t, p):
        return 1.0 if p == t else 0.8 if p == decent(t) else 0.0

    def biased(true, rng):
        u = rng.random()
        if u < 0.85:
            a, prop = decent(true), 0.85
        elif u < 0.90:
            a, prop = true, 0.05
        else:
            others = [x for x in LABELS if x not in (true, decent(true))]
            a, prop = others[int(rng.integers(4))], 0.025
        return a, prop, {"reward": reward(true, a) + float(rng.normal(0, 0.05))}
    test = intents(400, per_intent=20)
    with_iw, without = [], []
    for seed in range(3):
        records = _bandit_records(intents, 40 + seed, 60, biased)
        cfg = ReinforcementConfig(epochs=10, featurizer=SMALL, seed=seed, validation_split=0.0)
        with_iw.append(_greedy_value(ReinforcementTrainer(cfg, records).train().model, test, reward))
        no_prop = [{k: v for k, v in r.items() if k != "propensity"} for r in records]
        without.append(_greedy_value(ReinforcementTrainer(cfg, no_prop).train().model, test, reward))
    assert all(a > b for a, b in zip(with_iw, without)), (with_iw, without)
    assert np.mean(with_iw) >= np.mean(without) + 0.1, (with_iw, without)


@pytest.mark.parametrize("item,field", [
    ({"output": "a", "rating": 3}, "feedback[1].input"),
    ({"input": "x", "rating": 3}, "feedback[1].output"),
    ({"input": "x", "action": " ", "rating": 3}, "feedback[1].action"),
    ({"input": "x", "output": "a"}, "feedback[1].rating"),
    ({"input": "x", "output": "a", "rating": 6}, "feedback[1].rating"),
    ({"input": "x", "output": "a", "rating": 2.5}, "feedback[1].rating"),
    ({"input": "x", "output": "a", "reward": float("inf")}, "feedback[1].reward"),
    ({"input": "x", "output": "a", "success": "yes"}, "feedback[1].success"),
    ({"input": "x", "output": "a", "correct": 1}, "feedback[1].correct"),
    ({"input": "x", "output": "a", "rating": 4, "reward": 1.0}, "feedback[1].reward"),
    ({"input": "x", "output": "a", "rating": 4, "propensity": 0}, "feedback[1].propensity"),
    ({"input": "x", "output": "a", "rating": 4, "propensity": 1.5}, "feedback[1].propensity"),
    ({"input": "x", "output": "a", "rating": 4, "weight": -1}, "feedback[1].weight"),
])
def test_feedback_validation_names_the_field(item, field):
    with pytest.raises(InvalidArgument) as err:
        parse_feedback([{"input": "ok", "output": "a", "rating": 5}, item])
    assert err.value.field == field


def test_feedback_reward_mapping():
    records = parse_feedback([{"input": "x", "output": "a", "rating": r} for r in range(1, 6)]
                             + [{"input": "x", "actual": "b", "success": True}, {"input": "x", "action": "c",
                                                                                  "success": False},
                                {"input": "x", "output": "d", "reward": 0.25, "propensity": 0.5},
                                {"input": "x", "served_output": "e", "correct": False}])
    assert [r.reward for r in records] == [-1.0, -0.5, 0.0, 0.5, 1.0, 1.0, -1.0, 0.25, -1.0]
    assert [r.output for r in records[5:]] == ["b", "c", "d", "e"] and records[7].propensity == 0.5
