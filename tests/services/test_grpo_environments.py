"""A GRPO job in the built-in environment through the real stack: the environment is named in the
job's options, rollouts run real tools in the training worker, the exported trajectories carry each
call's arguments, result and measured duration, the evaluation rolls out in the same environment,
and a bad environment is refused at the edge."""
from __future__ import annotations

import grpc
import pytest
from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict

from trainhouse.common.grpc_errors import failure_of
from tests.grpo.builtin_tasks import COMPARISONS, make_builtin_tasks
from tests.services.test_paradigms import completed, queries_pb, start
from trainhouse.v1 import (data_service_pb2, evaluation_service_pb2, evaluation_service_pb2_grpc, job_state_pb2,
                           training_job_pb2)


def _config(environment, iterations=6):
    options = struct_pb2.Struct()
    options.update({"environment": environment, "outcome_comparisons": COMPARISONS, "hidden_sizes": [16],
                    "featurizer": {"dim": 512}})
    grpo = training_job_pb2.GrpoConfig(n_iterations=iterations, batch_size=10, n_trajectories_per_query=8,
                                       learning_rate=0.03, max_steps_per_trajectory=4, checkpoint_interval=iterations)
    return training_job_pb2.TrainingConfig(method=job_state_pb2.TRAINING_METHOD_GRPO, grpo=grpo, options=options)


def test_builtin_environment_job_exports_real_tool_calls(stack, training, data):
    job = completed(training, start(training, agent_id="grpo-builtin-env",
                                    training_queries=queries_pb(make_builtin_tasks(100, seed=0)),
                                    evaluation_queries=queries_pb(make_builtin_tasks(15, seed=1, held_out=True)),
                                    config=_config({"type": "builtin", "cache_code_runs": True})))
    options = MessageToDict(job.config.options)
    assert options["environment"]["type"] == "builtin" and options["environment"]["cache_code_runs"] is True
    stream = list(data.ExportTrajectories(data_service_pb2.ExportTrajectoriesRequest(job_id=job.job_id, limit=500)))
    exported = [MessageToDict(t, preserving_proto_field_name=True) for m in stream for t in m.trajectories]
    steps = [s for t in exported for s in t["steps"] if s["action"]["tool"] != "finish"]
    tools = {s["action"]["tool"] for s in steps}
    assert {"calculator", "table_lookup", "code_loader", "code_runner"} <= tools
    for s in steps:
        assert "params" in s["action"] and "ok" in s["result"] and s["duration"].endswith("s")
    lookups = [s for s in steps if s["action"]["tool"] == "table_lookup" and s["result"]["ok"]]
    assert lookups and all(s["action"]["params"]["table"] == "cities" and "answer" in s["result"]["changes"]
                           for s in lookups)
    runs = [s for s in steps if s["action"]["tool"] == "code_runner" and s["result"]["ok"]]
    assert runs and all(s["result"]["output"]["execution_time_ms"] > 0 and s["action"]["params"]["implementation"]
                        for s in runs)
    with stack.channel("evaluation") as ch:
        evaluation = evaluation_service_pb2_grpc.EvaluationServiceStub(ch)
        result = evaluation.Evaluate(evaluation_service_pb2.EvaluateRequest(job_id=job.job_id)).evaluation
    assert result.model_kind == "policy" and result.example_count == 15
    # compared with the untrained policy and with the keyword-to-tool heuristic, on the same queries
    assert result.comparison.baseline_kind == "untrained" and result.comparison.paired_examples == 15
    heuristic = result.heuristic_comparison
    assert heuristic.available and heuristic.baseline_kind == "heuristic" and heuristic.paired_examples == 15
    assert 0 <= heuristic.accuracy_test.p_value <= 1 and heuristic.accuracy_test.test == result.comparison.accuracy_test.test
    # the heuristic calls one tool and finishes: two steps per query
    assert heuristic.baseline_metrics["avg_steps"] == 2.0
    assert heuristic.improvements["success_rate"] == pytest.approx(
        result.metrics["success_rate"] - heuristic.baseline_metrics["success_rate"])
    tools_used = {tool for r in result.policy_results for tool in MessageToDict(r)["tools"]}
    assert tools_used <= {"calculator", "unit_converter", "date_calculator", "table_lookup", "code_loader",
                          "code_runner", "finish"}


def test_bad_environment_is_refused_at_the_edge(training):
    for environment, field in (({"type": "http", "url": "http://user:pw@tools.example"}, "environment.url"),
                               ({"type": "http", "url": "http://tools.example", "secret_env": "sk live"},
                                "environment.secret_env"),
                               ("quantum", "environment")):
        with pytest.raises(grpc.RpcError) as err:
            start(training, agent_id="grpo-bad-env", training_queries=queries_pb(make_builtin_tasks(100, seed=0)),
                  config=_config(environment))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert failure_of(err.value).field.endswith(field), failure_of(err.value).field
