"""Budget, divergence, the dispatch entry point, ONNX parity of every model kind, and bad options."""
import os

import numpy as np
import pytest

from trainhouse.core.errors import InvalidArgument
from trainhouse.core.featurizer import FeaturizerConfig
from trainhouse.core.onnx_model import OnnxModel
from trainhouse.core.trainer import (METHODS, BudgetExceeded, PriceModel, SupervisedConfig, SupervisedTrainer,
                                       TrainerCallbacks, TrainingDiverged, export_onnx, export_onnx_bytes,
                                       load_checkpoint, make_trainer, parse_config, run_training)

SMALL = {"dim": 2048}
TOKENS_ONLY = PriceModel(usd_per_compute_second=0.0, usd_per_1k_tokens=1.0)  # deterministic: 1 USD per 1k tokens


class Recorder(TrainerCallbacks):
    def __init__(self, directory=None):
        self.checkpoint_dir = directory
        self.events = []

    def on_event(self, kind, payload):
        self.events.append((kind, payload))

    def of(self, kind):
        return [p for k, p in self.events if k == kind]


def _dicts(examples):
    return [e.to_dict() for e in examples]


def _feedback(examples, seed=0):
    rng = np.random.default_rng(seed)
    labels = sorted({e.expected_output for e in examples})
    out = []
    for e in examples:
        a = labels[int(rng.integers(len(labels)))]
        out.append({"input": e.input, "output": a, "rating": 5 if a == e.expected_output else 1,
                    "propensity": 1 / len(labels)})
    return out


def test_budget_warns_at_75_and_90_then_stops_with_a_checkpoint(intents, tmp_path):
    data = intents(0, per_intent=10)
    cfg = SupervisedConfig.from_dict({"epochs": 20, "featurizer": SMALL, "validationSplit": 0.0})
    full = SupervisedTrainer(cfg, data, price_model=TOKENS_ONLY).train()
    per_epoch = full.metrics["tokens_processed"] / 20 / 1000  # USD per epoch under TOKENS_ONLY
    budget = round(per_epoch * 4.5, 6)
    rec = Recorder(str(tmp_path))
    cfg = SupervisedConfig.from_dict({"epochs": 20, "featurizer": SMALL, "validationSplit": 0.0,
                                      "maxBudgetUsd": budget})
    with pytest.raises(BudgetExceeded) as err:
        SupervisedTrainer(cfg, data, callbacks=rec, price_model=TOKENS_ONLY).train()
    assert err.value.reason == "budget_exceeded" and err.value.grpc_code == "RESOURCE_EXHAUSTED"
    warnings = rec.of("budget")
    assert [w["level"] for w in warnings] == ["warning_75", "warning_90"]
    assert warnings[0]["fraction"] >= 0.75 and warnings[1]["fraction"] >= 0.9 and warnings[0]["budget_usd"] == budget
    ckpt = rec.of("checkpoint")[-1]
    assert ckpt["kind"] == "budget" and os.path.exists(ckpt["path"]) and err.value.metadata["checkpoint"] == ckpt["path"]
    assert float(err.value.metadata["cost_usd"]) > budget
    costs = [m["value"] for m in rec.of("metric") if m["name"] == "cost_usd"]
    assert costs == sorted(costs) and len(costs) == 4  # one per completed epoch, increasing
    # The budget checkpoint resumes like any other (a larger budget set on resume is allowed).
    state = load_checkpoint(ckpt["path"])
    assert state.extra["budget"]["warned"] == ["warning_75", "warning_90"]
    more = SupervisedConfig.from_dict({"epochs": 20, "featurizer": SMALL, "validationSplit": 0.0, "maxBudgetUsd": 100})
    rec2 = Recorder(str(tmp_path / "again"))
    resumed = SupervisedTrainer(more, data, callbacks=rec2, price_model=TOKENS_ONLY).train(resume_from=ckpt["path"])
    assert resumed.metrics["epochs_run"] == 20 and not rec2.of("budget")  # warnings are not repeated
    assert resumed.metrics["tokens_processed"] == full.metrics["tokens_processed"]
    for (W1, _), (W2, _) in zip(resumed.model.params, full.model.params):
        assert np.array_equal(W1, W2)


def test_zero_budget_stops_after_the_first_step(intents):
    cfg = SupervisedConfig.from_dict({"epochs": 2, "featurizer": SMALL, "maxBudgetUsd": 0})
    rec = Recorder()
    with pytest.raises(BudgetExceeded):
        SupervisedTrainer(cfg, intents(0, per_intent=5), callbacks=rec, price_model=TOKENS_ONLY).train()
    assert len(rec.of("step")) == 1


def test_divergence_fails_with_reason_diverged_and_keeps_the_last_good_checkpoint(intents, tmp_path):
    # Two healthy curriculum epochs (checkpointed), then examples with an absurd weight make plain
    # SGD at learning rate 1 blow the weights up to inf and the loss to NaN.
    data = intents(0, per_intent=10)
    for e in data[:6]:
        e.level, e.weight = 2, 1e30
    cfg = SupervisedConfig.from_dict({"curriculum": {"enabled": True, "stages": [{"level": 1, "duration": 2},
                                                                                 {"level": 2, "duration": 3}]},
                                      "learningRate": 1.0, "optimizer": "sgd", "momentum": 0.0,
                                      "schedulerType": "constant", "checkpointInterval": 1, "featurizer": SMALL,
                                      "validationSplit": 0.0, "dropout": 0.0})
    rec = Recorder(str(tmp_path))
    with pytest.raises(TrainingDiverged) as err:
        SupervisedTrainer(cfg, data, callbacks=rec).train()
    assert err.value.reason == "diverged" and "learningRate" in err.value.message
    last = err.value.metadata["last_checkpoint"]
    assert last and os.path.exists(last) and last == rec.of("checkpoint")[-1]["path"]
    assert rec.of("checkpoint")[-1]["epoch"] == 2
    state = load_checkpoint(last)
    assert all(np.isfinite(W).all() for W in state.params["weights"])
    assert any(p["level"] == "error" and "kept" in p["message"] for p in rec.of("log"))


@pytest.fixture(scope="module")
def results(intents, tmp_path_factory):
    """One small run of every method through the dispatcher."""
    data = intents(0, per_intent=12)
    base = run_training("supervised", {"epochs": 3, "featurizer": SMALL, "hiddenSizes": [16]},
                        _dicts([e for e in data if e.expected_output != "refund"]), None, None)
    base_onnx = export_onnx_bytes(base.model)
    return {
        "supervised": base,
        "few_shot": run_training("few-shot", {"epochs": 2, "featurizer": SMALL}, _dicts(data[:18]), None, None),
        "transfer": run_training("transfer", {"epochs": 2}, _dicts(data), None, None, base_model_onnx=base_onnx),
        "transfer_frozen": run_training("transfer", {"epochs": 2, "freezeHidden": True}, _dicts(data), None, None,
                                        base_model_onnx=base_onnx),
        "reinforcement": run_training("reinforcement", {"epochs": 2, "featurizer": SMALL, "hiddenSizes": [8, 8]},
                                      _feedback(data), None, None),
        "reinforcement_from_base": run_training("reinforcement", {"epochs": 2}, _feedback(data), None, None,
                                                base_model_onnx=base_onnx),
    }


@pytest.mark.parametrize("kind", ["supervised", "few_shot", "transfer", "transfer_frozen", "reinforcement",
                                  "reinforcement_from_base"])
def test_every_model_kind_exports_to_onnx_matching_numpy(results, kind, intents, tmp_path):
    result = results[kind]
    assert result.method == kind.split("_from")[0].replace("_frozen", "")
    assert result.train_examples and hasattr(result.train_examples[0], "input")
    assert {"cost_usd", "tokens_processed", "epochs_run"} <= set(result.metrics)
    path = str(tmp_path / "m.onnx")
    export_onnx(result.model, path)
    texts = [e.input for e in intents(9, per_intent=4)] + ["", "unrelated words entirely"]
    served = OnnxModel.from_path(path)
    np.testing.assert_allclose(served.predict_proba(texts), result.model.predict_proba(texts), atol=1e-5, rtol=0)
    assert served.labels == result.model.labels
    assert served.metadata["paradigm"] == result.method


def test_make_trainer_exposes_the_split_before_training(intents):
    trainer = make_trainer("supervised", {"validationSplit": 0.25, "featurizer": SMALL}, _dicts(intents(0, per_intent=8)))
    assert len(trainer.train_examples) == 36 and len(trainer.validation_examples) == 12
    rl = make_trainer("reinforcement", {"validationSplit": 0.25, "featurizer": SMALL},
                      _feedback(intents(0, per_intent=8)))
    assert len(rl.validation_examples) == 12 and rl.validation_examples[0].to_dict()["reward"] in (-1.0, 1.0)


def test_reinforcement_and_few_shot_are_seeded_and_resume_bit_identically(intents, tmp_path):
    class StopAt(Recorder):
        def __init__(self, directory, at):
            super().__init__(directory)
            self.at = at

        def should_stop(self):
            return len(self.of("step")) >= self.at
    for method, records in (("reinforcement", _feedback(intents(0, per_intent=8))),
                            ("few_shot", _dicts(intents(0, per_intent=3)))):
        cfg = {"epochs": 4, "batchSize": 8, "featurizer": SMALL, "hiddenSizes": [8], "dropout": 0.2,
               "validationSplit": 0.2, "seed": 3}
        full = run_training(method, cfg, records, None, None)
        again = run_training(method, cfg, records, None, None)
        stopped = run_training(method, cfg, records, None, StopAt(str(tmp_path / method), 3))
        assert stopped.stopped
        resumed = run_training(method, cfg, records, None, None, resume_from=stopped.checkpoints[-1].path)
        for other in (again, resumed):
            for (W1, b1), (W2, b2) in zip(full.model.params, other.model.params):
                assert np.array_equal(W1, W2) and np.array_equal(b1, b2), method
            strip = lambda h: [{k: v for k, v in e.items() if k != "elapsed_s"} for e in h]  # noqa: E731
            assert strip(full.history) == strip(other.history)


def test_unknown_method_lists_the_valid_ones():
    with pytest.raises(InvalidArgument) as err:
        parse_config("distillation", {})
    assert err.value.field == "method" and all(m in err.value.message for m in METHODS)
    assert type(parse_config("Few-Shot", {})).__name__ == "FewShotConfig"


def test_transfer_needs_a_base_and_others_refuse_one(intents):
    data = _dicts(intents(0, per_intent=4))
    with pytest.raises(InvalidArgument) as err:
        make_trainer("transfer", {}, data)
    assert err.value.field == "baseVersionId"
    with pytest.raises(InvalidArgument) as err:
        make_trainer("transfer", {}, data, base_model_onnx=b"not onnx")
    assert err.value.field == "baseModel"


@pytest.mark.parametrize("method,config,field,allowed", [
    ("supervised", {"epochs": 0}, "epochs", "between 1 and 10000"),
    ("supervised", {"learningRate": 2}, "learningRate", "(0, 1]"),
    ("supervised", {"maxBudgetUsd": -1}, "maxBudgetUsd", "[0, inf]"),
    ("supervised", {"max_budget_usd": "ten"}, "max_budget_usd", "number"),
    ("supervised", {"sparseUpdates": "yes"}, "sparseUpdates", "boolean"),
    ("supervised", {"dropout": 1.5}, "dropout", "[0, 1)"),
    ("few_shot", {"prototypeScale": 0}, "prototypeScale", "(0, 1000]"),
    ("few_shot", {"anchorStrength": 101}, "anchorStrength", "[0, 100]"),
    ("transfer", {"freezeHidden": 1}, "freezeHidden", "boolean"),
    ("reinforcement", {"importanceWeightClip": 0.5}, "importanceWeightClip", "[1, 1000]"),
    ("reinforcement", {"entropyCoef": 2}, "entropyCoef", "[0, 1]"),
    ("reinforcement", {"baseline": "learned"}, "baseline", "mean, none"),
    ("reinforcement", {"batch_size": 0}, "batch_size", "between 1 and 65536"),
])
def test_out_of_range_options_name_field_and_range(method, config, field, allowed):
    with pytest.raises(InvalidArgument) as err:
        parse_config(method, config)
    assert err.value.field == field and allowed in err.value.message, err.value.message


@pytest.mark.parametrize("method", METHODS)
def test_unknown_optimizer_and_scheduler_list_the_valid_ones(method):
    with pytest.raises(InvalidArgument) as err:
        parse_config(method, {"optimizer": "rmsprop"})
    assert err.value.field == "optimizer" and all(o in err.value.message for o in ("adam", "adamw", "sgd"))
    with pytest.raises(InvalidArgument) as err:
        parse_config(method, {"schedulerType": "exponential"})
    assert err.value.field == "schedulerType" and all(s in err.value.message
                                                      for s in ("constant", "linear", "cosine", "step"))


def test_featurizer_config_default_is_unchanged_for_small_data():
    # Unset = chosen from the data; a few hundred examples get the featurizer trainhouse always had.
    assert parse_config("supervised", {}).featurizer is None
    assert parse_config("supervised", {}).resolved_for(300, 6).featurizer == FeaturizerConfig()
    assert parse_config("transfer", {}).featurizer is None  # = the base model's


def test_remote_compute_is_billed_and_survives_a_checkpoint():
    """GRPO rollout shards on other Ray workers use CPU the run's own clock never sees."""
    from trainhouse.core.trainer.cost import Budget

    prices = PriceModel(usd_per_compute_second=0.5, usd_per_1k_tokens=0.0)
    budget = Budget(None, prices, lambda kind, payload: None)
    budget.add_remote_seconds(3.0)
    budget.add_remote_seconds(-1.0)  # a shard cannot give time back
    assert budget.cost(2.0) == pytest.approx(2.5)
    restored = Budget(None, prices, lambda kind, payload: None)
    restored.load(budget.state())
    assert restored.cost(0.0) == pytest.approx(1.5)
    restored.load({"tokens": 0, "warned": []})  # a checkpoint written before remote compute was billed
    assert restored.cost(0.0) == 0.0
