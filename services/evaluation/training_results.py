"""evaluateTrainingResults: evaluate a completed job and read its training curves.

The job's version is evaluated on ``test_data`` or the job's held-out split (Evaluator); its
stored metric history is analysed by services/evaluation/curves.py; the score, grade, strengths,
weaknesses and recommendations follow the rules in services/evaluation/advice.py.
"""
from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from trainhouse.core.errors import AlreadyExists, InvalidArgument
from trainhouse.common.validation import resource_id
from trainhouse.evaluation import advice as A
from trainhouse.evaluation import curves as C
from trainhouse.evaluation.evaluator import EvalSpec, Evaluator
from trainhouse.evaluation.metrics import QUALITY_KEYS, REQUESTABLE
from trainhouse.evaluation.peers import job_config
from trainhouse.v1 import evaluation_pb2, evaluation_service_pb2, job_state_pb2, training_analysis_pb2

DEFAULT_CRITERIA = ("accuracy", "precision", "recall", "f1_score")
CONVERGENCE_ENUM = {C.CONVERGED: training_analysis_pb2.CONVERGENCE_STATUS_CONVERGED,
                    C.CONVERGING: training_analysis_pb2.CONVERGENCE_STATUS_CONVERGING,
                    C.DIVERGING: training_analysis_pb2.CONVERGENCE_STATUS_DIVERGING,
                    C.NOT_CONVERGED: training_analysis_pb2.CONVERGENCE_STATUS_NOT_CONVERGED}
RISK_ENUM = {C.NONE: training_analysis_pb2.RISK_LEVEL_NONE, C.LOW: training_analysis_pb2.RISK_LEVEL_LOW,
             C.MEDIUM: training_analysis_pb2.RISK_LEVEL_MEDIUM, C.HIGH: training_analysis_pb2.RISK_LEVEL_HIGH,
             C.UNKNOWN: training_analysis_pb2.RISK_LEVEL_UNKNOWN}


def final_metrics(job) -> dict[str, float]:
    """The job's final metrics, plus whether early stopping ended it (fewer epochs than configured)."""
    final = dict(job.metrics)
    total = job.config.epochs if job.config.HasField("epochs") else job.progress.total_epochs
    run = final.get("epochs_run", job.progress.current_epoch)
    final["stopped_early"] = 1.0 if total and run and run < total else 0.0
    if job.validation_examples:
        final["validation_examples"] = float(job.validation_examples)
    return final


def analysis_proto(analysis: C.Analysis) -> training_analysis_pb2.TrainingAnalysis:
    return training_analysis_pb2.TrainingAnalysis(
        convergence_status=CONVERGENCE_ENUM[analysis.convergence_status],
        overfitting_risk=RISK_ENUM[analysis.overfitting_risk], underfitting_risk=RISK_ENUM[analysis.underfitting_risk],
        training_efficiency=analysis.training_efficiency, signals=analysis.signals,
        explanations=analysis.explanations, epochs_analyzed=analysis.epochs_analyzed,
        monitored_curve=analysis.monitored_curve)


def metric_scores(criteria: list[str], metrics: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name in criteria:
        if name in QUALITY_KEYS and QUALITY_KEYS[name] in metrics:
            out[name] = metrics[QUALITY_KEYS[name]]
        elif name == "calibration" and "ece" in metrics:
            out["calibration"] = 1.0 - metrics["ece"]
            out["ece"] = metrics["ece"]
        else:
            for key in REQUESTABLE[name].keys:
                if key in metrics and key != "latency_samples":
                    out[key] = metrics[key]
    return out


class TrainingResults:
    def __init__(self, evaluator: Evaluator):
        self.evaluator = evaluator
        self.peers = evaluator.peers
        self.store = evaluator.store

    def analyze_job(self, job) -> C.Analysis:
        return C.analyze(C.curves_from_points(self.peers.metric_points(job.job_id)), final_metrics(job))

    def run(self, job_id: str, test_data: list[dict[str, Any]], criteria: list[str], benchmark_against: str,
            evaluation_id: str) -> evaluation_service_pb2.EvaluateTrainingResultsResponse:
        resource_id(job_id, "job_id")
        if evaluation_id:
            resource_id(evaluation_id, "evaluation_id")
            with self.evaluator.lock_for(evaluation_id):
                self.store.check_id_free("training_results", evaluation_id)
                self.store.check_id_free("evaluations", evaluation_id)
                stored = self.store.find_training_result(evaluation_id)
                if stored is not None:
                    if stored[0] != job_id:
                        raise AlreadyExists(f"evaluation '{evaluation_id}' belongs to job '{stored[0]}'",
                                            field="evaluation_id")
                    response = json_format.Parse(stored[1], evaluation_service_pb2.EvaluateTrainingResultsResponse())
                    response.reused = True
                    return response
                if self.store.find(evaluation_id) is not None:
                    raise AlreadyExists(f"evaluation '{evaluation_id}' exists and is not a training-results "
                                        "evaluation", field="evaluation_id")
                return self._run(job_id, test_data, criteria, benchmark_against, evaluation_id)
        return self._run(job_id, test_data, criteria, benchmark_against, evaluation_id)

    def _run(self, job_id: str, test_data: list[dict[str, Any]], criteria: list[str], benchmark_against: str,
             evaluation_id: str) -> evaluation_service_pb2.EvaluateTrainingResultsResponse:
        job = self.peers.completed_job(job_id, "job_id")
        if job.config.method == job_state_pb2.TRAINING_METHOD_GRPO:
            raise InvalidArgument("job_id", "GRPO policies are evaluated on trajectories (training.evaluate), "
                                  "not on labelled examples")
        if benchmark_against and benchmark_against == job_id:
            raise InvalidArgument("benchmark_against", "is the evaluated job itself")
        spec = EvalSpec(agent_id=job.agent_id, job_id=job_id, examples=test_data or None, examples_field="test_data",
                        metrics=criteria or list(DEFAULT_CRITERIA), metrics_field="evaluation_criteria",
                        baseline_job_id=benchmark_against, baseline_job_field="benchmark_against",
                        evaluation_id=evaluation_id, extra_metrics=("accuracy", "log_loss"))
        evaluation, _, internals = self.evaluator.evaluate(spec)
        names = internals["names"]
        candidate = internals["candidate"]
        analysis = self.analyze_job(job)
        quality, _ = A.quality(candidate.metrics, names)
        score = A.overall_score(quality, analysis)
        letter = A.grade(score)
        advice: A.Advice = internals["advice"]
        A.training_advice(analysis, {"config": job_config(job)}, advice)
        recs = advice.sorted_recommendations()
        response = evaluation_service_pb2.EvaluateTrainingResultsResponse(
            job_id=job_id, evaluation=evaluation, overall_score=score, quality_grade=letter,
            metric_scores=metric_scores(names, candidate.metrics),
            summary=A.summary_sentence(score, letter, candidate.metrics, analysis),
            analysis=analysis_proto(analysis), strengths=advice.strengths, weaknesses=advice.weaknesses,
            recommendations=[evaluation_pb2.EvaluationRecommendation(**r) for r in recs])
        base = internals["baseline"]
        if base is not None:
            comp = evaluation.comparison
            base_loss = float(base.losses.mean())
            cand_loss = float(candidate.losses.mean())
            response.benchmark_comparison.CopyFrom(training_analysis_pb2.JobBenchmarkComparison(
                baseline_job_id=comp.baseline_job_id, baseline_version_id=comp.baseline_version_id,
                accuracy_improvement=(float(candidate.correct.mean()) - float(base.correct.mean())) * 100.0,
                loss_reduction=(base_loss - cand_loss) / base_loss * 100.0 if base_loss > 0 else 0.0,
                paired_examples=comp.paired_examples, accuracy_test=comp.accuracy_test))
        self.store.add_training_result(evaluation.evaluation_id, job_id,
                                       json_format.MessageToJson(response, preserving_proto_field_name=True))
        return response

