"""TrainingService checks a job's config once, at StartJob, with the config models, and keeps only
the resolved config: gRPC callers get the same rules as the HTTP surfaces, named their own way."""
from __future__ import annotations

from typing import Any, Callable

import grpc
import pytest
from google.protobuf.json_format import MessageToDict

from trainhouse.common.grpc_errors import failure_of
from trainhouse.core.configs import FewShotConfig
from trainhouse.training.convert import config_dict
from tests.intents import make_examples
from tests.services.test_training_grpc import examples_pb, wait_terminal
from trainhouse.v1 import example_pb2, job_state_pb2, training_job_pb2, training_service_pb2

M = job_state_pb2


def _queries() -> list[example_pb2.TrainingQuery]:
    out = []
    for i in range(100):
        q = example_pb2.TrainingQuery(query=f"where is my order {i}")
        q.expected_outcome.update({"tool": "lookup_order"})
        out.append(q)
    return out


def _classifier(mutate: Callable[[training_job_pb2.TrainingConfig], Any]) -> training_service_pb2.StartJobRequest:
    request = training_service_pb2.StartJobRequest(agent_id="config-edge", examples=examples_pb(make_examples(3)))
    mutate(request.config)
    return request


def _grpo(mutate: Callable[[training_job_pb2.TrainingConfig], Any]) -> training_service_pb2.StartJobRequest:
    request = training_service_pb2.StartJobRequest(agent_id="config-edge", training_queries=_queries())
    request.config.method = M.TRAINING_METHOD_GRPO
    mutate(request.config)
    return request


def _stages(config: training_job_pb2.TrainingConfig) -> None:
    config.curriculum.enabled = True
    config.curriculum.stages.add(level=0, duration=1)


@pytest.mark.parametrize("request_, field, says", [
    (_classifier(lambda c: setattr(c, "learning_rate", 1.5)), "config.learning_rate", "(0, 1]"),
    (_classifier(lambda c: c.options.update({"learningRate": 5})), "config.learningRate", "(0, 1]"),
    (_classifier(lambda c: c.options.update({"learning_rate": 0})), "config.learning_rate", "(0, 1]"),
    (_classifier(lambda c: setattr(c, "validation_frequency", "hourly")), "config.validation_frequency", "epoch, step"),
    (_classifier(lambda c: setattr(c, "epochs", 10001)), "config.epochs", "between 1 and 10000"),
    (_classifier(_stages), "config.curriculum.stages[0].level", "between 1 and"),
    (_classifier(lambda c: (setattr(c, "method", M.TRAINING_METHOD_FEW_SHOT),
                            c.options.update({"prototypeScale": 0}))), "config.prototypeScale", "(0, 1000]"),
    (_grpo(lambda c: setattr(c.grpo, "n_iterations", 0)), "config.grpo.n_iterations", "between 1 and 10000"),
    (_grpo(lambda c: c.options.update({"klEstimator": "k2"})), "config.grpo.klEstimator", "k3, exact"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_a_bad_value_is_invalid_argument_naming_the_field_as_sent(training, request_, field: str,
                                                                  says: str) -> None:
    with pytest.raises(grpc.RpcError) as err:
        training.StartJob(request_)
    failure = failure_of(err.value)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.field == field and says in failure.message, failure


def test_the_job_keeps_and_returns_the_resolved_config(training) -> None:
    config = training_job_pb2.TrainingConfig(method=M.TRAINING_METHOD_FEW_SHOT, epochs=2, seed=2 ** 40 + 1)
    config.options.update({"learningRate": 0.05, "anchorStrength": 0.5})
    started = training.StartJob(training_service_pb2.StartJobRequest(
        agent_id="config-resolved", examples=examples_pb(make_examples(3)), config=config)).job
    expected = FewShotConfig(epochs=2, seed=2 ** 40 + 1, learning_rate=0.05, anchor_strength=0.5).to_dict()
    for job in (started, training.GetJob(training_service_pb2.GetJobRequest(job_id=started.job_id)).job):
        got = job.config
        # Every default filled in, read back by the same model to the same config ...
        assert FewShotConfig.from_dict(config_dict(got)).to_dict() == expected
        assert got.seed == 2 ** 40 + 1 and got.batch_size == expected["batch_size"] and not got.hidden_sizes
        # ... and only canonical names: the caller's camelCase keys are not kept.
        options = MessageToDict(got.options)
        assert "learningRate" not in options and "anchorStrength" not in options
        assert options["anchor_strength"] == 0.5 and options["prototype_scale"] == expected["prototype_scale"]
        assert set(options) <= set(expected)
    # The worker trains from the stored (resolved) config.
    done = wait_terminal(training, started.job_id)
    assert done.state == M.JOB_STATE_COMPLETED, (done.status_reason, done.error.message)
    assert done.progress.total_epochs == 2


def test_auto_defaults_are_chosen_from_the_data_and_recorded_on_the_job(training) -> None:
    """Unset settings are chosen when the job is accepted, from its data, and GetJob returns them."""
    tiny = training.StartJob(training_service_pb2.StartJobRequest(
        agent_id="config-auto-tiny", examples=examples_pb(make_examples(5)))).job
    large = training.StartJob(training_service_pb2.StartJobRequest(
        agent_id="config-auto-large", examples=examples_pb(make_examples(550)))).job  # 2,200 examples, 4 outputs
    training.CancelJob(training_service_pb2.CancelJobRequest(job_id=large.job_id))
    got = {}
    for name, job in (("tiny", tiny), ("large", large)):
        stored = training.GetJob(training_service_pb2.GetJobRequest(job_id=job.job_id)).job.config
        got[name] = config_dict(stored)
        assert got[name]["epochs"] and got[name]["batch_size"] and got[name]["learning_rate"]
    assert list(got["tiny"]["hidden_sizes"]) == [64] and got["tiny"]["featurizer"]["dim"] == 2 ** 14
    assert got["tiny"]["refit"] is False and got["tiny"]["learning_rate"] == 0.001
    assert list(got["large"]["hidden_sizes"]) == [] and got["large"]["featurizer"]["dim"] == 2 ** 17
    assert got["large"]["refit"] is True and got["large"]["learning_rate"] == 0.01
    assert got["large"]["sparse_updates"] is True and got["large"]["featurizer"]["normalize"] == "per_family"
    done = wait_terminal(training, tiny.job_id)
    assert done.state == M.JOB_STATE_COMPLETED, (done.status_reason, done.error.message)


def test_a_refit_job_holds_nothing_out(training) -> None:
    """After a refit on train + validation the job's validation split is no longer held out:
    evaluations asking for it get nothing, and 'train' is every example."""
    config = training_job_pb2.TrainingConfig(method=M.TRAINING_METHOD_SUPERVISED, epochs=3)
    config.options.update({"refit": True})
    items = make_examples(10)
    job = training.StartJob(training_service_pb2.StartJobRequest(
        agent_id="config-refit", examples=examples_pb(items), config=config)).job
    done = wait_terminal(training, job.job_id)
    assert done.state == M.JOB_STATE_COMPLETED, (done.status_reason, done.error.message)

    def split(name: str) -> list:
        return list(training.ListJobExamples(training_service_pb2.ListJobExamplesRequest(
            job_id=job.job_id, split=name)).examples)
    assert split("validation") == [] and len(split("train")) == len(split("all")) == len(items)
