"""Evaluate / EvaluateTrainingResults over real gRPC against real trained jobs."""
from __future__ import annotations

import grpc
import pytest
from scipy import stats as sps

from trainhouse.common.grpc_errors import failure_of
from trainhouse.evaluation.advice import grade
from tests.evaluation.conftest import AGENT, examples_pb
from tests.intents import make_examples
from trainhouse.v1 import (evaluation_service_pb2 as pb, model_registry_pb2, training_analysis_pb2,
                           training_job_pb2, training_service_pb2)


def held_out(training, job_id: str) -> list:
    return list(training.ListJobExamples(training_service_pb2.ListJobExamplesRequest(
        job_id=job_id, split="validation", page_size=10000)).examples)


def predicted(registry, agent: str, version: str, texts: list[str]) -> list[str]:
    resp = registry.Predict(model_registry_pb2.PredictRequest(agent_id=agent, version_id=version, inputs=texts))
    # The catalogue's top answer (what EvaluationService scores accuracy on), also when the version
    # abstains (output '__out_of_scope__'; abstention has its own metrics).
    return [p.top[0].output for p in resp.predictions]


def expected_mcnemar_p(b: int, c: int) -> float:
    if b + c == 0:
        return 1.0
    if b + c < 25:
        return sps.binomtest(b, b + c, 0.5).pvalue
    return sps.chi2.sf((abs(b - c) - 1) ** 2 / (b + c), 1)


def test_default_test_set_is_the_versions_held_out_split(ev, trained, training, registry):
    resp = ev.Evaluate(pb.EvaluateRequest(agent_id=AGENT))
    e = resp.evaluation
    assert e.version_id == trained.strong.model_version_id and e.job_id == trained.strong.job_id
    assert e.test_set_source == "job:validation" and e.test_set_job_id == trained.strong.job_id
    examples = held_out(training, trained.strong.job_id)
    assert e.example_count == len(examples) == trained.strong.validation_examples
    outputs = predicted(registry, AGENT, e.version_id, [x.input for x in examples])
    accuracy = sum(o == x.expected_output for o, x in zip(outputs, examples)) / len(examples)
    assert e.metrics["accuracy"] == pytest.approx(accuracy)
    for key in ("precision", "recall", "f1", "macro_f1", "log_loss", "ece", "latency_p50_ms", "latency_p95_ms",
                "cost_per_task_usd", "consistency", "safety", "relevance", "mrr"):
        assert key in e.metrics, key
    assert 0 < e.metrics["latency_p50_ms"] <= e.metrics["latency_p95_ms"]
    assert e.metrics["relevance"] >= e.metrics["accuracy"]
    # confusion matrix and per-output figures describe the same predictions
    assert sum(sum(r.counts) for r in e.confusion_matrix.rows) == e.example_count
    diag = sum(r.counts[i] for i, r in enumerate(e.confusion_matrix.rows))
    assert diag / e.example_count == pytest.approx(accuracy)
    assert sum(o.support for o in e.per_output) == e.example_count
    assert e.metrics["f1"] == pytest.approx(sum(o.f1 for o in e.per_output) / len(e.per_output))
    cost = e.cost
    assert cost.cost_per_task_usd == pytest.approx(cost.compute_seconds_per_task * cost.price_per_cpu_second
                                                   + cost.tokens_per_task / 1000 * cost.price_per_1k_tokens)
    assert cost.compute_seconds_per_task * 1000 == pytest.approx(e.metrics["latency_mean_ms"])
    assert set(e.consistency.agreement_by_kind) == {"casing", "punctuation", "typo", "word_order"}
    assert e.consistency.perturbed_inputs > 0 and 0 <= e.metrics["consistency"] <= 1
    assert not e.HasField("comparison")
    assert ev.GetEvaluation(pb.GetEvaluationRequest(evaluation_id=e.evaluation_id)).evaluation == e


def test_named_dataset_inline_negatives_and_requested_metrics_only(ev, trained):
    e = ev.Evaluate(pb.EvaluateRequest(agent_id=AGENT, dataset_id=trained.dataset_id, metrics=["accuracy", "f1_score"],
                                       job_id=trained.strong.job_id)).evaluation
    assert e.test_set_source == "dataset" and e.dataset_id == trained.dataset_id and e.example_count == 40
    assert set(e.metrics) == {"accuracy", "f1", "macro_f1", "micro_f1"}
    assert list(e.requested_metrics) == ["accuracy", "f1_score"]
    inline = make_examples(5, seed=7) + [{"input": "I was charged twice for my plan", "expected_output": "shipping",
                                          "feedback": "incorrect"}]
    e = ev.Evaluate(pb.EvaluateRequest(agent_id=AGENT, examples=examples_pb(inline), metrics=["safety"])).evaluation
    assert e.test_set_source == "inline" and e.example_count == 20 and e.negative_example_count == 1
    assert set(e.metrics) == {"safety", "confident_error_rate", "forbidden_output_avoidance"}
    assert e.metrics["forbidden_output_avoidance"] in (0.0, 1.0)


def test_bad_requests_name_the_field(ev, trained):
    cases = [
        (pb.EvaluateRequest(agent_id=AGENT, metrics=["accuracy", "vibes"]), grpc.StatusCode.INVALID_ARGUMENT, "metrics[1]"),
        (pb.EvaluateRequest(agent_id=AGENT, evaluation_type="deep"), grpc.StatusCode.INVALID_ARGUMENT, "evaluation_type"),
        (pb.EvaluateRequest(agent_id=AGENT, dataset_id="x", examples=examples_pb(make_examples(1))),
         grpc.StatusCode.INVALID_ARGUMENT, "dataset_id"),
        (pb.EvaluateRequest(agent_id=AGENT, test_set_job_id=trained.strong.job_id, test_set_split="test"),
         grpc.StatusCode.INVALID_ARGUMENT, "test_set_split"),
        (pb.EvaluateRequest(agent_id=AGENT, examples=[examples_pb(make_examples(1))[0]], evaluation_id="bad id"),
         grpc.StatusCode.INVALID_ARGUMENT, "evaluation_id"),
        (pb.EvaluateRequest(agent_id="nobody-here"), grpc.StatusCode.NOT_FOUND, None),
        (pb.EvaluateRequest(agent_id=AGENT, dataset_id="no-such-dataset"), grpc.StatusCode.NOT_FOUND, None),
        (pb.EvaluateRequest(job_id="job-missing"), grpc.StatusCode.NOT_FOUND, None),
    ]
    for request, code, field in cases:
        with pytest.raises(grpc.RpcError) as err:
            ev.Evaluate(request)
        failure = failure_of(err.value)
        assert failure.code == code, (request, failure)
        if field:
            assert failure.field == field, failure
    with pytest.raises(grpc.RpcError) as err:
        ev.Evaluate(pb.EvaluateRequest(agent_id=AGENT, metrics=["bogus"]))
    for name in ("accuracy", "precision", "recall", "f1", "latency", "cost", "consistency", "calibration"):
        assert name in err.value.details()


def test_evaluation_id_is_idempotent_and_listed(ev, trained):
    request = pb.EvaluateRequest(agent_id=AGENT, metrics=["accuracy"], evaluation_id="eval-idem-1")
    first = ev.Evaluate(request)
    again = ev.Evaluate(request)
    assert not first.reused and again.reused
    assert again.evaluation == first.evaluation
    listed = ev.ListEvaluations(pb.ListEvaluationsRequest(agent_id=AGENT, page_size=1000)).evaluations
    assert [x.evaluation_id for x in listed].count("eval-idem-1") == 1
    by_job = ev.ListEvaluations(pb.ListEvaluationsRequest(job_id=trained.strong.job_id, page_size=1000,
                                                          include_total_size=True))
    assert all(x.job_id == trained.strong.job_id for x in by_job.evaluations) and by_job.total_size >= 1
    page = ev.ListEvaluations(pb.ListEvaluationsRequest(agent_id=AGENT, page_size=1))
    assert len(page.evaluations) == 1 and page.next_page_token
    with pytest.raises(grpc.RpcError) as err:
        ev.Evaluate(pb.EvaluateRequest(agent_id="eval-router-other", evaluation_id="eval-idem-1"))
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.RpcError) as err:
        ev.GetEvaluation(pb.GetEvaluationRequest(evaluation_id="eval-nope"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_compare_to_baseline_uses_the_previous_version_on_the_same_examples(ev, trained, training, registry):
    e = ev.Evaluate(pb.EvaluateRequest(agent_id=AGENT, compare_to_baseline=True, evaluation_type="quick")).evaluation
    comp = e.comparison
    assert comp.available and comp.baseline_version_id == trained.weak.model_version_id
    assert comp.baseline_kind in ("previous", "active")
    assert comp.paired_examples == e.example_count
    examples = held_out(training, trained.strong.job_id)
    texts = [x.input for x in examples]
    new = [o == x.expected_output for o, x in zip(predicted(registry, AGENT, e.version_id, texts), examples)]
    old = [o == x.expected_output for o, x in zip(predicted(registry, AGENT, comp.baseline_version_id, texts), examples)]
    b = sum(n and not o for n, o in zip(new, old))
    c = sum(o and not n for n, o in zip(new, old))
    test = comp.accuracy_test
    assert (test.discordant_b, test.discordant_c) == (b, c)
    assert test.p_value == pytest.approx(expected_mcnemar_p(b, c))
    assert test.test == ("mcnemar_exact" if b + c < 25 else "mcnemar_chi2")
    assert comp.improvements["accuracy"] == pytest.approx((sum(new) - sum(old)) / len(new))
    assert comp.baseline_metrics["accuracy"] == pytest.approx(sum(old) / len(old))
    assert comp.improvements["accuracy"] > 0 and test.significant, (b, c, test.p_value)
    assert 0 <= comp.f1_test.p_value <= 1 and comp.f1_test.ci_low <= comp.f1_test.difference <= comp.f1_test.ci_high
    named = ev.Evaluate(pb.EvaluateRequest(agent_id=AGENT, baseline_job_id=trained.weak.job_id,
                                           metrics=["accuracy"])).evaluation.comparison
    assert named.baseline_kind == "job" and named.baseline_job_id == trained.weak.job_id
    assert named.accuracy_test.p_value == pytest.approx(test.p_value)
    first = ev.Evaluate(pb.EvaluateRequest(agent_id=AGENT, version_id=trained.weak.model_version_id,
                                           compare_to_baseline=True, metrics=["accuracy"])).evaluation.comparison
    if not first.available:  # weak is the agent's first version: nothing before it
        assert "no version before" in first.note


def test_evaluate_training_results(ev, trained):
    resp = ev.EvaluateTrainingResults(pb.EvaluateTrainingResultsRequest(
        job_id=trained.strong.job_id, benchmark_against=trained.weak.job_id))
    assert resp.job_id == trained.strong.job_id and resp.evaluation.test_set_source == "job:validation"
    assert 0 <= resp.overall_score <= 100 and resp.quality_grade == grade(resp.overall_score)
    assert set(resp.metric_scores) == {"accuracy", "precision", "recall", "f1_score"}
    assert resp.metric_scores["f1_score"] == pytest.approx(resp.evaluation.metrics["f1"])
    a = resp.analysis
    assert a.convergence_status != training_analysis_pb2.CONVERGENCE_STATUS_UNSPECIFIED
    assert a.overfitting_risk != training_analysis_pb2.RISK_LEVEL_UNSPECIFIED
    assert 0 <= a.training_efficiency <= 100 and a.epochs_analyzed == trained.strong.progress.current_epoch
    assert "loss_slope_per_epoch" in a.signals and "accuracy_gap" in a.signals and len(a.explanations) == 4
    assert resp.strengths or resp.weaknesses
    for rec in resp.recommendations:
        assert rec.signal and rec.rule and rec.priority in ("high", "medium", "low")
    priorities = [{"high": 0, "medium": 1, "low": 2}[r.priority] for r in resp.recommendations]
    assert priorities == sorted(priorities)
    bc = resp.benchmark_comparison
    comp = resp.evaluation.comparison
    assert bc.baseline_job_id == trained.weak.job_id and bc.paired_examples == resp.evaluation.example_count
    assert bc.accuracy_improvement == pytest.approx(comp.improvements["accuracy"] * 100)
    assert bc.loss_reduction == pytest.approx(-comp.improvements["log_loss"] / comp.baseline_metrics["log_loss"] * 100)
    assert bc.accuracy_improvement > 0 and bc.loss_reduction > 0
    weak = ev.EvaluateTrainingResults(pb.EvaluateTrainingResultsRequest(
        job_id=trained.weak.job_id, evaluation_criteria=["accuracy", "consistency", "latency"]))
    # 1 epoch: too few to judge convergence (rule C1)
    assert weak.analysis.convergence_status == training_analysis_pb2.CONVERGENCE_STATUS_NOT_CONVERGED
    assert {"accuracy", "consistency", "latency_p50_ms", "latency_p95_ms"} <= set(weak.metric_scores)
    assert weak.overall_score < resp.overall_score
    again = ev.EvaluateTrainingResults(pb.EvaluateTrainingResultsRequest(job_id=trained.weak.job_id,
                                                                         evaluation_id="eval-tr-1"))
    repeat = ev.EvaluateTrainingResults(pb.EvaluateTrainingResultsRequest(job_id=trained.weak.job_id,
                                                                          evaluation_id="eval-tr-1"))
    assert repeat.reused and repeat.overall_score == again.overall_score
    assert repeat.evaluation.evaluation_id == "eval-tr-1"


def test_training_results_needs_a_completed_job(ev, training):
    job_id = training.StartJob(training_service_pb2.StartJobRequest(
        agent_id="eval-long", examples=examples_pb(make_examples(50, seed=5)),
        config=training_job_pb2.TrainingConfig(epochs=5000, early_stopping=False, checkpoint_interval=5000))).job.job_id
    try:
        with pytest.raises(grpc.RpcError) as err:
            ev.EvaluateTrainingResults(pb.EvaluateTrainingResultsRequest(job_id=job_id))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert failure_of(err.value).field == "job_id"
    finally:
        training.CancelJob(training_service_pb2.CancelJobRequest(job_id=job_id))
    with pytest.raises(grpc.RpcError) as err:
        ev.EvaluateTrainingResults(pb.EvaluateTrainingResultsRequest(job_id=job_id))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "cancelled" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        ev.EvaluateTrainingResults(pb.EvaluateTrainingResultsRequest(job_id="job-nope"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_out_of_scope_examples_get_abstention_metrics(ev, trained):
    """A test set with __out_of_scope__ examples: out-of-scope recall / precision and in-scope
    accuracy next to the usual metrics, which stay over the in-scope examples."""
    in_scope = make_examples(5, seed=11)
    unknown = [{"input": text, "expected_output": "__out_of_scope__"} for text in (
        "what is the weather on mars", "play some jazz in the kitchen", "how tall is mount everest",
        "set an alarm for seven tomorrow", "tell me a joke about cats", "translate hello into french")]
    plain = ev.Evaluate(pb.EvaluateRequest(agent_id=AGENT, examples=examples_pb(in_scope),
                                           metrics=["accuracy"])).evaluation
    assert "out_of_scope_recall" not in plain.metrics
    e = ev.Evaluate(pb.EvaluateRequest(agent_id=AGENT, examples=examples_pb(in_scope + unknown),
                                       metrics=["accuracy"])).evaluation
    m = e.metrics
    assert {"out_of_scope_recall", "out_of_scope_precision", "in_scope_accuracy", "accuracy_with_out_of_scope",
            "in_scope_accuracy_without_abstention"} <= set(m)
    assert m["out_of_scope_examples"] == len(unknown) and m["in_scope_examples"] == len(in_scope)
    assert 0 <= m["out_of_scope_recall"] <= 1 and 0 <= m["out_of_scope_precision"] <= 1
    assert m["in_scope_accuracy"] <= m["in_scope_accuracy_without_abstention"] == plain.metrics["accuracy"]
    assert m["accuracy"] == plain.metrics["accuracy"]  # no catalogue output is right for an unknown request
