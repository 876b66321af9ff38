import os

import numpy as np
import pytest

from trainhouse.core.errors import InvalidArgument
from trainhouse.core.featurizer import FeaturizerConfig
from trainhouse.core.trainer import (SupervisedConfig, SupervisedTrainer, TrainerCallbacks, TrainingState,
                                       load_checkpoint, save_checkpoint)

# Dropout, step-level validation and early stopping all on: the rng stream, the best weights and
# the patience counter must all survive a checkpoint for the resumed run to match exactly.
CFG = dict(epochs=6, batch_size=16, dropout=0.3, validation_frequency="step", validation_steps=4,
           checkpoint_interval=2, scheduler_type="cosine", warmup_steps=3, optimizer="adamw", weight_decay=0.01,
           featurizer=FeaturizerConfig(dim=2048), hidden_sizes=(24,), seed=11)


class StopAfter(TrainerCallbacks):
    def __init__(self, directory, steps=None):
        self.checkpoint_dir = directory
        self.steps = steps
        self.seen = 0

    def on_event(self, kind, payload):
        if kind == "step":
            self.seen += 1

    def should_stop(self):
        return self.steps is not None and self.seen >= self.steps


def _same(a, b):
    assert len(a.model.params) == len(b.model.params)
    for (W1, b1), (W2, b2) in zip(a.model.params, b.model.params):
        assert np.array_equal(W1, W2) and np.array_equal(b1, b2)
    strip = lambda h: [{k: v for k, v in e.items() if k != "elapsed_s"} for e in h]  # noqa: E731
    assert strip(a.history) == strip(b.history)
    timing = {"cost_usd", "compute_seconds"}  # wall-clock dependent by design (price per compute-second)
    assert {k: v for k, v in a.metrics.items() if k not in timing} == {k: v for k, v in b.metrics.items()
                                                                       if k not in timing}


@pytest.fixture(scope="module")
def data(intents):
    return intents(2, per_intent=12)


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("full"))
    return SupervisedTrainer(SupervisedConfig(**CFG), data, callbacks=StopAfter(directory)).train(), directory


@pytest.mark.parametrize("stop_at", [7, 15])  # mid-epoch positions (an epoch here is 4 steps)
def test_resume_from_stop_is_bit_identical(data, uninterrupted, tmp_path, stop_at):
    full, _ = uninterrupted
    stopped = SupervisedTrainer(SupervisedConfig(**CFG), data, callbacks=StopAfter(str(tmp_path), stop_at)).train()
    assert stopped.stopped and stopped.checkpoints[-1].kind == "cancel"
    resumed = SupervisedTrainer(SupervisedConfig(**CFG), data, callbacks=StopAfter(str(tmp_path))).train(
        resume_from=stopped.checkpoints[-1].path)
    assert not resumed.stopped
    _same(full, resumed)


def test_resume_from_interval_checkpoint_is_bit_identical(data, uninterrupted, tmp_path):
    full, directory = uninterrupted
    path = os.path.join(directory, "epoch-0002.npz")
    resumed = SupervisedTrainer(SupervisedConfig(**CFG), data, callbacks=StopAfter(str(tmp_path))).train(
        resume_from=path)
    _same(full, resumed)


def test_resume_rejects_other_config_or_data(data, uninterrupted):
    _, directory = uninterrupted
    path = os.path.join(directory, "epoch-0002.npz")
    with pytest.raises(InvalidArgument) as err:
        SupervisedTrainer(SupervisedConfig(**{**CFG, "learning_rate": 0.01}), data).train(resume_from=path)
    assert err.value.field == "resumeFrom" and "learning_rate" in err.value.message
    with pytest.raises(InvalidArgument):
        SupervisedTrainer(SupervisedConfig(**CFG), data[:-3]).train(resume_from=path)
    with pytest.raises(InvalidArgument):
        SupervisedTrainer(SupervisedConfig(**CFG), data).train(resume_from=path + ".missing")


def test_checkpoint_round_trip_is_exact_and_atomic(tmp_path):
    rng = np.random.default_rng(5)
    rng.random(3)
    W = rng.standard_normal((4, 3)).astype(np.float32)
    state = TrainingState(params={"weights": [W], "biases": [np.zeros(3, np.float32)]},
                          optimizer={"name": "adam", "t": 3, "m": [W * 2], "v": [W * W]}, scheduler={"step": 3},
                          rng_state=rng.bit_generator.state, epoch=1, global_step=3,
                          order=np.array([2, 0, 1]), position=1, label_map=["a", "b", "c"],
                          featurizer=FeaturizerConfig().to_dict(), config={"epochs": 2},
                          best_val_loss=0.25, history=[{"epoch": 1, "validation_loss": None, "loss": 0.1 + 0.2}])
    path = str(tmp_path / "ck.npz")
    save_checkpoint(path, state)
    save_checkpoint(path, state)  # overwrite in place
    assert os.listdir(tmp_path) == ["ck.npz"]
    back = load_checkpoint(path)
    assert np.array_equal(back.params["weights"][0], W) and back.params["weights"][0].dtype == np.float32
    assert np.array_equal(back.optimizer["v"][0], W * W) and back.optimizer["t"] == 3
    assert back.order.tolist() == [2, 0, 1] and back.history == state.history
    restored = np.random.default_rng()
    restored.bit_generator.state = back.rng_state
    assert np.array_equal(restored.random(5), rng.random(5))
