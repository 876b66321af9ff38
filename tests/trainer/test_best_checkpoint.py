"""The "best" checkpoint is written at most once per BEST_CHECKPOINT_MIN_INTERVAL_S (loop.py): fast
epochs improve many times a second and each write is the whole training state plus an fsync.
What must hold whatever the interval: training is unchanged, and whenever anything else is
written (another checkpoint, a stop, the end) the best file on disk is the state's best."""
import os

import numpy as np
import pytest

from trainhouse.core.featurizer import FeaturizerConfig
from trainhouse.core.trainer import SupervisedConfig, SupervisedTrainer, TrainerCallbacks, load_checkpoint
from trainhouse.core.trainer import loop

CFG = dict(epochs=20, batch_size=8, early_stopping=False, checkpoint_interval=5, learning_rate=0.05,
           featurizer=FeaturizerConfig(dim=2048), hidden_sizes=(16,), seed=3)


class Recorder(TrainerCallbacks):
    def __init__(self, directory, stop_after_epochs=None):
        self.checkpoint_dir = directory
        self.checkpoints: list[dict] = []
        self.epochs = 0
        self.stop_after_epochs = stop_after_epochs

    def on_event(self, kind, payload):
        if kind == "checkpoint":
            seen = dict(payload)
            if payload["kind"] != "best":  # the best of this state, and what the best file holds now
                best_file = os.path.join(self.checkpoint_dir, "best.npz")
                seen["state_best"] = load_checkpoint(payload["path"]).best_epoch
                seen["disk_best"] = load_checkpoint(best_file).best_epoch if os.path.exists(best_file) else None
            self.checkpoints.append(seen)
        elif kind == "epoch":
            self.epochs += 1

    def should_stop(self):
        return self.stop_after_epochs is not None and self.epochs >= self.stop_after_epochs


def _run(data, directory, interval, monkeypatch, stop_after_epochs=None):
    monkeypatch.setattr(loop, "BEST_CHECKPOINT_MIN_INTERVAL_S", interval)
    callbacks = Recorder(str(directory), stop_after_epochs)
    result = SupervisedTrainer(SupervisedConfig(**CFG), data, callbacks=callbacks).train()
    return result, callbacks.checkpoints


@pytest.fixture(scope="module")
def data(intents):
    return intents(3, per_intent=10)


def _weights(path):
    return load_checkpoint(path).params["weights"]


def test_every_improvement_is_written_when_due_at_once(data, tmp_path, monkeypatch):
    _, written = _run(data, tmp_path, 0.0, monkeypatch)
    best = [c for c in written if c["kind"] == "best"]
    # The fixture improves on several epochs, then overfits: its best is not its last epoch.
    assert len(best) >= 3 and best[-1]["epoch"] < CFG["epochs"]
    assert [c["epoch"] for c in best] == sorted({c["epoch"] for c in best})


def test_coalesced_best_is_the_true_best_before_the_next_checkpoint_and_at_the_end(data, tmp_path, monkeypatch):
    every, every_written = _run(data, tmp_path / "every", 0.0, monkeypatch)
    coalesced, written = _run(data, tmp_path / "coalesced", 3600.0, monkeypatch)
    for (W1, b1), (W2, b2) in zip(every.model.params, coalesced.model.params):  # training is unchanged
        assert np.array_equal(W1, W2) and np.array_equal(b1, b2)
    every_best = [c for c in every_written if c["kind"] == "best"]
    best = [c for c in written if c["kind"] == "best"]
    assert len(best) < len(every_best)  # improvements in between were kept in memory, not written
    assert best[0]["epoch"] == every_best[0]["epoch"]  # the first is written at once
    # The last best written is the run's true best, with that epoch's metrics and weights...
    assert (best[-1]["epoch"], best[-1]["step"], best[-1]["metrics"]) == \
        (every_best[-1]["epoch"], every_best[-1]["step"], every_best[-1]["metrics"])
    final_best = load_checkpoint(best[-1]["path"])
    assert final_best.epoch == every_best[-1]["epoch"]
    for W1, W2 in zip(_weights(best[-1]["path"]), _weights(every_best[-1]["path"])):
        assert np.array_equal(W1, W2)
    # ...and every other checkpoint found the best of its own state already on disk.
    order = [c["kind"] for c in written]
    assert order.index("final") > order.index("best")
    others = [c for c in written if c["kind"] != "best"]
    assert len(others) >= 3  # epoch-0005, epoch-0010, final
    for c in others:
        assert c["disk_best"] is not None and c["disk_best"] == c["state_best"]


def test_a_stop_writes_the_pending_best_first(data, tmp_path, monkeypatch):
    stopped, written = _run(data, tmp_path, 3600.0, monkeypatch, stop_after_epochs=9)
    assert stopped.stopped and written[-1]["kind"] == "cancel"
    stop_state = load_checkpoint(written[-1]["path"])
    last_best = [c for c in written if c["kind"] == "best"][-1]
    assert last_best["epoch"] == stop_state.best_epoch < stop_state.epoch
    for W1, W2 in zip(_weights(last_best["path"]), stop_state.best_params["weights"]):
        assert np.array_equal(W1, W2)
