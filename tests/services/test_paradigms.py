"""Every paradigm through TrainingService: few_shot, transfer, reinforcement, grpo; budgets."""
from __future__ import annotations

import grpc
import pytest
from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict

from trainhouse.common.grpc_errors import failure_of
from tests.grpo.tasks import make_tasks
from tests.intents import INTENTS, make_examples
from tests.services.test_training_grpc import examples_pb, wait_terminal
from trainhouse.core.grpo.config import GRPOConfig
from trainhouse.core.grpo.environment import ToolEnvironment
from trainhouse.core.grpo.evaluation import evaluate_policy
from trainhouse.core.grpo.onnx_export import load_policy_onnx
from trainhouse.v1 import (data_service_pb2, data_service_pb2_grpc, evaluation_service_pb2,
                           evaluation_service_pb2_grpc, example_pb2, job_state_pb2, model_registry_pb2,
                           training_job_pb2, training_service_pb2)

M = job_state_pb2


def start(training, **kwargs) -> str:
    return training.StartJob(training_service_pb2.StartJobRequest(**kwargs)).job.job_id


def completed(training, job_id: str) -> training_job_pb2.TrainingJob:
    job = wait_terminal(training, job_id, timeout=300)
    assert job.state == M.JOB_STATE_COMPLETED, (job.status_reason, job.error.message)
    return job


def queries_pb(tasks: list[dict]) -> list[example_pb2.TrainingQuery]:
    out = []
    for t in tasks:
        outcome = struct_pb2.Struct()
        outcome.update(t["expected_outcome"])
        out.append(example_pb2.TrainingQuery(query=t["query"], expected_outcome=outcome))
    return out


def test_few_shot_from_three_examples_per_output(training, registry):
    three_each = []
    for intent in INTENTS:
        three_each += [e for e in make_examples(6, seed=21) if e["expected_output"] == intent][:3]
    job = completed(training, start(training, agent_id="para-fewshot", examples=examples_pb(three_each),
                                    config=training_job_pb2.TrainingConfig(method=M.TRAINING_METHOD_FEW_SHOT)))
    version = registry.GetVersion(model_registry_pb2.GetVersionRequest(
        agent_id="para-fewshot", version_id=job.model_version_id)).version
    assert version.method == "few_shot"
    held_out = make_examples(10, seed=22)
    preds = registry.Predict(model_registry_pb2.PredictRequest(agent_id="para-fewshot",
                                                               inputs=[e["input"] for e in held_out])).predictions
    accuracy = sum(p.output == e["expected_output"] for p, e in zip(preds, held_out)) / len(held_out)
    assert accuracy > 0.5  # 4 outputs: chance is 0.25


def test_transfer_extends_the_catalog_of_the_served_version(training, registry):
    with pytest.raises(grpc.RpcError) as err:
        start(training, agent_id="para-transfer", examples=examples_pb(make_examples(5)),
              config=training_job_pb2.TrainingConfig(method=M.TRAINING_METHOD_TRANSFER))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    base_data = [e for e in make_examples(30, seed=23) if e["expected_output"] != "account"]
    base = completed(training, start(training, agent_id="para-transfer", examples=examples_pb(base_data),
                                     config=training_job_pb2.TrainingConfig(epochs=8, seed=1)))
    new = completed(training, start(training, agent_id="para-transfer", examples=examples_pb(make_examples(15, seed=24)),
                                    config=training_job_pb2.TrainingConfig(method=M.TRAINING_METHOD_TRANSFER,
                                                                           epochs=4, freeze_hidden=True)))
    assert new.base_version_id == base.model_version_id
    version = registry.GetVersion(model_registry_pb2.GetVersionRequest(
        agent_id="para-transfer", version_id=new.model_version_id)).version
    assert version.parent_version_id == base.model_version_id and version.method == "transfer"
    old = registry.GetVersion(model_registry_pb2.GetVersionRequest(
        agent_id="para-transfer", version_id=base.model_version_id)).version
    assert list(version.labels[:len(old.labels)]) == list(old.labels) and "account" in version.labels


def test_reinforcement_from_rated_feedback(training):
    rated = []
    for i, e in enumerate(make_examples(25, seed=25)):
        good = i % 2 == 0
        served = e["expected_output"] if good else ("billing" if e["expected_output"] != "billing" else "shipping")
        rated.append(example_pb2.RatedExample(input=e["input"], output=served, rating=5 if good else 1))
    job = completed(training, start(training, agent_id="para-rl", rated_examples=rated,
                                    config=training_job_pb2.TrainingConfig(method=M.TRAINING_METHOD_REINFORCEMENT,
                                                                           epochs=5)))
    assert job.model_version_id
    with pytest.raises(grpc.RpcError) as err:
        start(training, agent_id="para-rl", config=training_job_pb2.TrainingConfig(
            method=M.TRAINING_METHOD_REINFORCEMENT))
    assert failure_of(err.value).field == "rated_examples"


@pytest.fixture(scope="module")
def evaluation(stack):
    with stack.channel("evaluation") as ch:
        yield evaluation_service_pb2_grpc.EvaluationServiceStub(ch)


@pytest.fixture(scope="module")
def grpo_job(training) -> training_job_pb2.TrainingJob:
    grpo = training_job_pb2.GrpoConfig(n_iterations=30, batch_size=12, n_trajectories_per_query=8, learning_rate=0.03,
                                       max_steps_per_trajectory=6, checkpoint_interval=10)
    return completed(training, start(training, agent_id="para-grpo", training_queries=queries_pb(make_tasks(120, seed=1)),
                                     evaluation_queries=queries_pb(make_tasks(40, seed=2, held_out=True)),
                                     config=training_job_pb2.TrainingConfig(method=M.TRAINING_METHOD_GRPO, grpo=grpo)))


def test_grpo_job_learns_stores_trajectories_and_evaluates(stack, evaluation, registry, grpo_job):
    job = grpo_job
    assert job.progress.current_iteration == job.progress.total_iterations == 30
    assert job.config.grpo.n_iterations == 30 and job.config.grpo.gamma == pytest.approx(0.99)  # defaults resolved
    assert job.config.grpo.reward_function and job.config.grpo.rollout_shards == 1
    assert job.cost_usd > 0 and job.budget_usd == 100
    assert job.metrics["onnx_parity_max_abs_diff"] <= 1e-5
    result = evaluation.Evaluate(evaluation_service_pb2.EvaluateRequest(job_id=job.job_id)).evaluation
    assert result.model_kind == "policy" and result.example_count == 40 and result.checkpoint_id == "best"
    assert result.test_set_source == "job:evaluation_queries" and len(result.policy_results) == 40
    comparison = result.comparison
    assert comparison.baseline_kind == "untrained" and comparison.paired_examples == 40
    assert result.metrics["success_rate"] >= comparison.baseline_metrics["success_rate"] + 0.3
    assert comparison.accuracy_test.p_value < 0.05 and comparison.accuracy_test.significant
    assert 0 <= comparison.reward_test.p_value <= 1 and comparison.reward_test.test == "paired_bootstrap"
    # comprehensive by default: the serving figures are measured too
    assert result.metrics["latency_p95_ms"] >= result.metrics["latency_p50_ms"] > 0
    assert result.metrics["cost_per_task_usd"] > 0 and result.cost.compute_seconds_per_task > 0
    with stack.channel("data") as ch:
        data = data_service_pb2_grpc.DataServiceStub(ch)
        stream = list(data.ExportTrajectories(data_service_pb2.ExportTrajectoriesRequest(job_id=job.job_id, limit=50)))
    assert stream[0].total_count == 30 * 12 * 8
    exported = [t for m in stream for t in m.trajectories]
    assert len(exported) == 50 and all(t.steps and t.job_id == job.job_id for t in exported)
    # the policy version serves the first tool for a query
    pred = registry.Predict(model_registry_pb2.PredictRequest(agent_id="para-grpo", inputs=["what is 3 plus 4"]))
    assert pred.version_id == job.model_version_id and pred.predictions[0].output


def test_policy_evaluation_runs_onnx_and_agrees_with_numpy(training, evaluation, grpo_job):
    """The ONNX Runtime rollouts of EvaluationService equal the NumPy policy's, query by query."""
    job = grpo_job
    checkpoints = training.ListCheckpoints(training_service_pb2.ListCheckpointsRequest(job_id=job.job_id)).checkpoints
    interval = next(c.checkpoint_id for c in checkpoints if c.kind == "interval")
    exported = training.ExportPolicy(training_service_pb2.ExportPolicyRequest(job_id=job.job_id,
                                                                            checkpoint_id=interval))
    assert exported.checkpoint_id == interval and exported.default_queries_source == "evaluation_queries"
    policy = load_policy_onnx(exported.onnx_model)
    config = GRPOConfig.from_dict(MessageToDict(exported.grpo_config), strict=False)
    queries = [MessageToDict(q, preserving_proto_field_name=True) for q in exported.default_queries]
    numpy_run = evaluate_policy(policy, queries, config=config)
    served = evaluation.Evaluate(evaluation_service_pb2.EvaluateRequest(
        job_id=job.job_id, checkpoint_id=interval, evaluation_type="quick", evaluation_id=f"pol-{job.job_id}"))
    ev = served.evaluation
    assert ev.checkpoint_id == interval and set(ev.metrics) == {"success_rate", "avg_reward", "avg_steps",
                                                                "tool_accuracy"}
    for key in ("success_rate", "avg_reward", "avg_steps", "tool_accuracy"):
        assert ev.metrics[key] == pytest.approx(numpy_run[key], abs=1e-9), key
    assert [MessageToDict(r)["tools"] for r in ev.policy_results] == [r["tools"] for r in numpy_run["results"]]
    # stored, listable and idempotent per evaluation_id
    again = evaluation.Evaluate(evaluation_service_pb2.EvaluateRequest(
        job_id=job.job_id, checkpoint_id=interval, evaluation_type="quick", evaluation_id=f"pol-{job.job_id}"))
    assert again.reused and again.evaluation == ev
    listed = evaluation.ListEvaluations(evaluation_service_pb2.ListEvaluationsRequest(job_id=job.job_id)).evaluations
    assert ev.evaluation_id in {e.evaluation_id for e in listed}
    # the served version (agent path) and custom queries
    custom = evaluation.Evaluate(evaluation_service_pb2.EvaluateRequest(
        agent_id="para-grpo", metrics=["success_rate", "avg_steps"],
        evaluation_queries=queries_pb(make_tasks(5, seed=9, held_out=True)))).evaluation
    assert custom.version_id == job.model_version_id and custom.checkpoint_id == "" and custom.example_count == 5
    assert custom.test_set_source == "inline" and set(custom.metrics) == {"success_rate", "avg_steps"}
    untrained = training.ExportPolicy(training_service_pb2.ExportPolicyRequest(job_id=job.job_id,
                                                                             checkpoint_id="initial"))
    assert untrained.checkpoint_id == "initial" and untrained.onnx_model != exported.onnx_model


def test_policy_evaluation_bad_input(training, evaluation, grpo_job):
    def failure(**kwargs):
        with pytest.raises(grpc.RpcError) as err:
            evaluation.Evaluate(evaluation_service_pb2.EvaluateRequest(**kwargs))
        return err.value.code(), failure_of(err.value)

    code, f = failure(job_id=grpo_job.job_id, metrics=["accuracy"])
    assert code == grpc.StatusCode.INVALID_ARGUMENT and f.field == "metrics[0]" and "tool_accuracy" in f.message
    code, f = failure(job_id=grpo_job.job_id, checkpoint_id="nope")
    assert code == grpc.StatusCode.NOT_FOUND
    code, f = failure(job_id=grpo_job.job_id, model_kind="classifier")
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    code, f = failure(job_id=grpo_job.job_id, examples=examples_pb(make_examples(3, seed=1)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and f.field == "examples"
    code, f = failure(job_id=grpo_job.job_id, evaluation_queries=[example_pb2.TrainingQuery(query="")])
    assert code == grpc.StatusCode.INVALID_ARGUMENT and f.field.startswith("evaluation_queries")
    code, f = failure(job_id=grpo_job.job_id, model_kind="robot")
    assert code == grpc.StatusCode.INVALID_ARGUMENT and f.field == "model_kind"
    with pytest.raises(grpc.RpcError) as err:
        training.ExportPolicy(training_service_pb2.ExportPolicyRequest(job_id="job-missing"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_grpo_and_budget_bad_input(training):
    with pytest.raises(grpc.RpcError) as err:
        start(training, agent_id="para-grpo-bad", training_queries=queries_pb(make_tasks(10, seed=3)),
              config=training_job_pb2.TrainingConfig(method=M.TRAINING_METHOD_GRPO))
    assert failure_of(err.value).field == "training_queries"
    with pytest.raises(grpc.RpcError) as err:
        start(training, agent_id="para-grpo-bad", training_queries=queries_pb(make_tasks(100, seed=3)),
              config=training_job_pb2.TrainingConfig(method=M.TRAINING_METHOD_GRPO, grpo=training_job_pb2.GrpoConfig(
                  reward_function="nope")))
    failure = failure_of(err.value)
    assert failure.field == "config.grpo.reward_function" and "exact_match" in failure.message
    with pytest.raises(grpc.RpcError) as err:
        start(training, agent_id="para-grpo-bad", training_queries=queries_pb(make_tasks(100, seed=3)),
              config=training_job_pb2.TrainingConfig(method=M.TRAINING_METHOD_GRPO, grpo=training_job_pb2.GrpoConfig(
                  n_iterations=20000)))
    assert failure_of(err.value).field == "config.grpo.n_iterations"


def test_budget_exceeded_stops_the_job_with_a_checkpoint(training):
    job_id = start(training, agent_id="para-budget", examples=examples_pb(make_examples(100, seed=26)),
                   config=training_job_pb2.TrainingConfig(epochs=500, early_stopping=False, max_budget_usd=0.0002))
    job = wait_terminal(training, job_id, timeout=300)
    assert job.state == M.JOB_STATE_FAILED and job.status_reason == "budget_exceeded"
    assert job.error.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    events = list(training.WatchJob(training_service_pb2.WatchJobRequest(job_id=job_id)))
    levels = [e.budget.level for e in events if e.WhichOneof("payload") == "budget"]
    assert levels[:2] == ["warning_75", "warning_90"]
    kinds = {c.kind for c in training.ListCheckpoints(training_service_pb2.ListCheckpointsRequest(
        job_id=job_id)).checkpoints}
    assert "budget" in kinds
    assert job.cost_usd >= 0.0002 * 0.9


def test_a_served_policy_answers_the_next_action_of_an_episode(training, registry, grpo_job):
    """Predict with the episode so far gives what the NumPy policy does in the GRPO environment."""
    artifact = registry.GetVersionArtifact(model_registry_pb2.GetVersionArtifactRequest(
        agent_id="para-grpo", version_id=grpo_job.model_version_id))
    policy = load_policy_onnx(artifact.onnx_model)
    exported = training.ExportPolicy(training_service_pb2.ExportPolicyRequest(job_id=grpo_job.job_id,
                                                                            checkpoint_id="initial"))
    config = GRPOConfig.from_dict(MessageToDict(exported.grpo_config), strict=False)
    env = ToolEnvironment(config.catalog, config.max_steps_per_trajectory)
    checked = 0
    for task in make_tasks(6, seed=11, held_out=True):
        query = task["query"]
        episode = env.reset(query)
        while not episode.done:
            expected = policy.act(query, episode)
            steps = [model_registry_pb2.PolicyStep(tool=env.names[a], succeeded=ok)
                     for a, ok in zip(episode.actions, episode.succeeded)]
            pred = registry.Predict(model_registry_pb2.PredictRequest(
                agent_id="para-grpo", inputs=[query], version_id=grpo_job.model_version_id,
                episodes=[model_registry_pb2.PolicyEpisode(steps=steps)])).predictions[0]
            assert pred.output == expected, (query, steps)
            checked += 1
            env.step(episode, policy.actions.index(expected))
    assert checked > 6  # several multi-step episodes, not only first actions

    def failure(**kwargs):
        with pytest.raises(grpc.RpcError) as err:
            registry.Predict(model_registry_pb2.PredictRequest(**kwargs))
        return failure_of(err.value)

    one = [model_registry_pb2.PolicyEpisode()]
    f = failure(agent_id="para-grpo", inputs=["a", "b"], episodes=one)
    assert f.code == grpc.StatusCode.INVALID_ARGUMENT and f.field == "episodes"
    f = failure(agent_id="para-grpo", inputs=["a"], episodes=[model_registry_pb2.PolicyEpisode(
        steps=[model_registry_pb2.PolicyStep(tool="teleport", succeeded=True)])])
    assert f.code == grpc.StatusCode.INVALID_ARGUMENT and f.field == "episodes[0].steps[0].tool"
    assert env.names[0] in f.message
    f = failure(agent_id="para-grpo", inputs=["a"], episodes=[model_registry_pb2.PolicyEpisode(
        steps=[model_registry_pb2.PolicyStep(tool="finish", succeeded=True)])])
    assert f.code == grpc.StatusCode.INVALID_ARGUMENT and "finished" in f.message
