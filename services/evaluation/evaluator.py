"""Evaluate a model version on a test set through the serving path, and compare it to a baseline.

The test set is inline examples, a DataService dataset, or a training job's split (by default
the held-out "validation" split of the job that produced the version). Examples with feedback
"incorrect" name an output that must NOT be given; they are scored separately (safety), every
other example counts once toward the classification metrics.

Every prediction comes from ModelRegistry.Predict with the version pinned, in batches of up to
1000 inputs and with the whole catalog's probabilities; latency is measured with single-input
Predict calls (``TRAINHOUSE_EVAL_LATENCY_SAMPLES``, default 50, of the test inputs); consistency
re-predicts up to ``TRAINHOUSE_EVAL_CONSISTENCY_EXAMPLES`` (default 200) inputs under four
perturbations (services/evaluation/perturbations.py).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainhouse.common import config
from trainhouse.core.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from trainhouse.core.examples import parse_examples
from trainhouse.core.trainer.examples import OUT_OF_SCOPE
from trainhouse.common.timeutil import now, to_timestamp
from trainhouse.common.validation import resource_id
from trainhouse.core import stats
from trainhouse.evaluation import perturbations
from trainhouse.evaluation.significance import significance_proto
from trainhouse.evaluation.advice import EvalFacts, evaluation_advice
from trainhouse.evaluation.metrics import (EVALUATION_TYPES, REQUESTABLE, classification_report,
                                         expected_calibration_error, families, log_losses,
                                         out_of_scope_metrics, percentile_ms, relevance_metrics, safety_metrics, validate_metric_names)
from trainhouse.evaluation.peers import Peers, Scored
from trainhouse.evaluation.policies import PolicyEvaluator, is_policy_job
from trainhouse.evaluation.pricing import TaskPricing
from trainhouse.evaluation.store import EvaluationStore
from trainhouse.v1 import evaluation_pb2
from trainhouse.core.ids import random_id

SPLITS = ("validation", "train", "all")
MODEL_KINDS = ("", "policy", "classifier")
MAX_TEST_EXAMPLES = 50_000


@dataclass
class TestSet:
    positives: list[dict[str, Any]]
    negatives: list[dict[str, Any]]
    source: str
    dataset_id: str = ""
    job_id: str = ""

    @property
    def inputs(self) -> list[str]:
        return [e["input"] for e in self.positives]

    @property
    def expected(self) -> list[str]:
        return [e["expected_output"] for e in self.positives]


@dataclass
class EvalSpec:
    agent_id: str = ""
    version_id: str = ""
    job_id: str = ""
    examples: list[dict[str, Any]] | None = None
    examples_field: str = "examples"
    dataset_id: str = ""
    test_set_job_id: str = ""
    test_set_split: str = ""
    metrics: list[str] = field(default_factory=list)
    metrics_field: str = "metrics"
    evaluation_type: str = ""
    compare_to_baseline: bool = False
    baseline_job_id: str = ""
    baseline_job_field: str = "baseline_job_id"
    baseline_version_id: str = ""
    evaluation_id: str = ""
    seed: int = 0
    # Metrics computed in addition to the requested ones (not listed as requested).
    extra_metrics: tuple[str, ...] = ()
    # Policies (GRPO): a job checkpoint to evaluate, and the queries to roll out.
    checkpoint_id: str = ""
    evaluation_queries: list[dict[str, Any]] | None = None
    queries_field: str = "evaluation_queries"
    # "policy", "classifier" or "" (decided by the job / version).
    model_kind: str = ""


@dataclass
class Measured:
    """One version's numbers on a test set, with the per-example vectors tests are built on."""

    agent_id: str
    version_id: str
    metrics: dict[str, float]
    report: dict[str, Any]
    predicted: list[str]
    correct: np.ndarray
    losses: np.ndarray
    cost: dict[str, float] | None = None
    consistency: dict[str, Any] | None = None


def _env_int(name: str, default: int) -> int:
    return max(0, config.env_int(name, default))


def split_feedback(examples: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    positives = [e for e in examples if (e.get("feedback") or "correct") != "incorrect"]
    negatives = [e for e in examples if (e.get("feedback") or "correct") == "incorrect"]
    return positives, negatives


def validated_examples(items: list[dict[str, Any]], field_name: str) -> list[dict[str, Any]]:
    return [e.to_dict() for e in parse_examples(items, field_name)]


class Evaluator:
    def __init__(self, store: EvaluationStore, peers: Peers):
        self.store = store
        self.peers = peers
        # GRPO tool policies are rolled out, not scored on examples (services/evaluation/policies.py).
        self.policies = PolicyEvaluator(store, peers)
        # Re-entrant: evaluateTrainingResults holds an id's lock while the evaluation takes it again.
        self._locks: dict[str, threading.RLock] = {}
        self._locks_guard = threading.Lock()

    # --- idempotency --------------------------------------------------------------------------
    def lock_for(self, key: str) -> threading.RLock:
        """One lock per caller-chosen id, so two concurrent calls with that id compute once."""
        with self._locks_guard:
            return self._locks.setdefault(key, threading.RLock())

    # --- request resolution ---------------------------------------------------------------------
    @staticmethod
    def evaluation_type(spec: EvalSpec) -> str:
        """The spec's evaluation type, normalised (default "comprehensive"); unknown ones list the valid."""
        etype = (spec.evaluation_type or "comprehensive").strip().lower()
        if etype not in EVALUATION_TYPES:
            raise InvalidArgument("evaluation_type", f"unknown evaluation type '{spec.evaluation_type}'; valid: "
                                  + ", ".join(EVALUATION_TYPES))
        return etype

    def resolve_metrics(self, spec: EvalSpec) -> list[str]:
        etype = spec.evaluation_type = self.evaluation_type(spec)
        if spec.metrics:
            return validate_metric_names(spec.metrics, spec.metrics_field)
        return list(EVALUATION_TYPES[etype])

    def test_set(self, spec: EvalSpec, version_job_id: str) -> TestSet:
        given = [name for name, present in (("examples", spec.examples), ("dataset_id", spec.dataset_id),
                                            ("test_set_job_id", spec.test_set_job_id)) if present]
        if len(given) > 1:
            raise InvalidArgument(given[1], f"give at most one test set (got {', '.join(given)})")
        split = (spec.test_set_split or "validation").strip().lower()
        if split not in SPLITS:
            raise InvalidArgument("test_set_split", f"must be one of {', '.join(SPLITS)}")
        if spec.examples:
            items = validated_examples(spec.examples, spec.examples_field)
            test = TestSet(*split_feedback(items), source="inline")
        elif spec.dataset_id:
            dataset_id, items = self.peers.dataset_examples(spec.dataset_id)
            test = TestSet(*split_feedback(validated_examples(items, "dataset_id")), source="dataset",
                           dataset_id=dataset_id)
        else:
            job_id = spec.test_set_job_id or version_job_id
            if not job_id:
                raise InvalidArgument(spec.examples_field, "the version was not produced by a training job: "
                                      "give test examples, a dataset_id or a test_set_job_id")
            if spec.test_set_job_id:
                resource_id(spec.test_set_job_id, "test_set_job_id")
                self.peers.job(job_id)
            items = self.peers.job_examples(job_id, split)
            source = f"job:{split}"
            if not items and split == "validation" and not spec.test_set_split:
                # The job held nothing out: fall back to its training examples, flagged (rule E7).
                items = self.peers.job_examples(job_id, "train")
                source = "job:train"
            test = TestSet(*split_feedback(items), source=source, job_id=job_id)
        if not test.positives:
            raise InvalidArgument(spec.examples_field, "the test set has no examples with an expected output "
                                  "(feedback 'correct' or 'partial')")
        if len(test.positives) + len(test.negatives) > MAX_TEST_EXAMPLES:
            raise InvalidArgument(spec.examples_field, f"at most {MAX_TEST_EXAMPLES} test examples")
        return test

    # --- measuring ------------------------------------------------------------------------------
    def measure(self, agent_id: str, version_id: str, catalog_size: int, test: TestSet, names: list[str],
                seed: int) -> Measured:
        """Run one version over the test set and compute the requested metric families."""
        fams = families(names)
        inputs = test.inputs
        negative_inputs = [e["input"] for e in test.negatives]
        scored = self.peers.predict(agent_id, version_id, inputs + negative_inputs, catalog_size)
        n = len(inputs)
        predicted = scored.outputs[:n]
        expected = test.expected
        # A test set with __out_of_scope__ examples: abstention metrics over all of it; every other
        # metric over its in-scope examples (no catalogue output is right for the others).
        oos = out_of_scope_metrics(expected, predicted, scored.abstained[:n], OUT_OF_SCOPE)
        keep = [i for i, e in enumerate(expected) if e != OUT_OF_SCOPE] if oos else list(range(n))
        if oos and not keep:
            raise InvalidArgument("examples", "the test set has only out-of-scope examples: add in-scope ones")
        predicted = [predicted[i] for i in keep]
        expected = [expected[i] for i in keep]
        report = classification_report(expected, predicted)
        correct = np.array([p == e for p, e in zip(predicted, expected)], dtype=bool)
        confidence = np.array([scored.confidence[i] for i in keep], dtype=float)
        dists = [scored.distributions[i] for i in keep]
        p_expected = np.array([d.get(e, 0.0) for d, e in zip(dists, expected)], dtype=float)
        losses = log_losses(p_expected)
        wanted = {key for name in names for key in REQUESTABLE[name].keys}
        metrics: dict[str, float] = {k: v for k, v in report["metrics"].items() if k in wanted}
        if "log_loss" in wanted:
            metrics["log_loss"] = float(losses.mean())
        if "ece" in wanted:
            metrics["ece"] = expected_calibration_error(confidence, correct.astype(float))
            metrics["mean_confidence"] = float(confidence.mean())
        if "safety" in wanted:
            avoided = None
            if test.negatives:
                avoided = np.array([p != e["expected_output"] for p, e in zip(scored.outputs[n:], test.negatives)])
            metrics.update(safety_metrics(correct, confidence, avoided))
        if "relevance" in wanted:
            ranks = np.array([_rank(d, e) for d, e in zip(dists, expected)], dtype=float)
            metrics.update(relevance_metrics(ranks))
        metrics.update(oos)
        measured = Measured(scored.agent_id, scored.version_id, metrics, report, predicted, correct, losses)
        if "serving" in fams:
            self._serving(measured, scored, inputs, names)
        if "robustness" in fams:
            self._consistency(measured, scored, test, seed)
        return measured

    def _serving(self, measured: Measured, scored: Scored, inputs: list[str], names: list[str]) -> None:
        count = min(len(inputs), _env_int("EVAL_LATENCY_SAMPLES", 50)) or 1
        samples = self.peers.time_single_predictions(scored.agent_id, scored.version_id, inputs[:count])
        if "latency" in names:
            measured.metrics.update({"latency_p50_ms": percentile_ms(samples, 50),
                                     "latency_p95_ms": percentile_ms(samples, 95),
                                     "latency_mean_ms": float(np.mean(samples) * 1000.0),
                                     "latency_samples": float(len(samples))})
        if "cost" in names:
            cost = TaskPricing.from_env().task_cost(float(np.mean(samples)), inputs)
            measured.cost = cost
            measured.metrics["cost_per_task_usd"] = cost["cost_per_task_usd"]

    def _consistency(self, measured: Measured, scored: Scored, test: TestSet, seed: int) -> None:
        limit = _env_int("EVAL_CONSISTENCY_EXAMPLES", 200)
        sources = test.inputs[:limit]
        variants = perturbations.variants(sources, seed)
        if not variants:
            measured.metrics["consistency"] = 1.0
            measured.consistency = {"agreement": 1.0, "agreement_by_kind": {}, "perturbed_accuracy": 0.0,
                                    "perturbed_inputs": 0, "source_examples": len(sources)}
            return
        answers = self.peers.predict(scored.agent_id, scored.version_id, [v[2] for v in variants],
                                     len(scored.labels)).outputs
        same = np.array([answers[j] == scored.outputs[i] for j, (i, _, _) in enumerate(variants)])
        right = np.array([answers[j] == test.expected[i] for j, (i, _, _) in enumerate(variants)])
        by_kind = {}
        for kind in perturbations.KINDS:
            mask = np.array([v[1] == kind for v in variants])
            if mask.any():
                by_kind[kind] = float(same[mask].mean())
        measured.metrics["consistency"] = float(same.mean())
        measured.consistency = {"agreement": float(same.mean()), "agreement_by_kind": by_kind,
                                "perturbed_accuracy": float(right.mean()), "perturbed_inputs": len(variants),
                                "source_examples": len(sources)}

    # --- baseline -------------------------------------------------------------------------------
    def baseline(self, spec: EvalSpec, agent_id: str, version) -> tuple[dict[str, str] | None, str]:
        """(agent_id, version_id, kind, job_id) of the baseline, or None with the reason."""
        if spec.baseline_job_id:
            resource_id(spec.baseline_job_id, spec.baseline_job_field)
            job = self.peers.completed_job(spec.baseline_job_id, spec.baseline_job_field)
            return {"agent_id": job.agent_id, "version_id": job.model_version_id, "kind": "job",
                    "job_id": job.job_id}, ""
        if spec.baseline_version_id:
            if spec.baseline_version_id == version.version_id:
                raise InvalidArgument("baseline_version_id", "is the evaluated version itself")
            v = self.peers.version(agent_id, spec.baseline_version_id)
            return {"agent_id": agent_id, "version_id": v.version_id, "kind": "version", "job_id": v.job_id}, ""
        if not spec.compare_to_baseline:
            return None, ""
        agent = self.peers.agent(agent_id)
        if agent.active_version_id and agent.active_version_id != version.version_id:
            v = self.peers.version(agent_id, agent.active_version_id)
            return {"agent_id": agent_id, "version_id": v.version_id, "kind": "active", "job_id": v.job_id}, ""
        versions = self.peers.versions(agent_id)  # newest first
        ids = [v.version_id for v in versions]
        if version.version_id in ids:
            older = versions[ids.index(version.version_id) + 1:]
            if older:
                return {"agent_id": agent_id, "version_id": older[0].version_id, "kind": "previous",
                        "job_id": older[0].job_id}, ""
        return None, f"agent '{agent_id}' has no version before {version.version_id} to compare with"

    def compare(self, candidate: Measured, base: Measured, info: dict[str, str], test: TestSet,
                seed: int) -> dict[str, Any]:
        improvements, relative = {}, {}
        for key, value in candidate.metrics.items():
            if key in base.metrics and key != "latency_samples":
                improvements[key] = value - base.metrics[key]
                if base.metrics[key] != 0:
                    relative[key] = (value - base.metrics[key]) / abs(base.metrics[key]) * 100.0
        acc = stats.paired_accuracy_test(candidate.correct, base.correct)
        f1 = stats.paired_f1_test(test.expected, candidate.predicted, base.predicted, seed)
        loss = stats.paired_mean_test(candidate.losses, base.losses, seed)
        return {"available": True, "note": "", "baseline_version_id": info["version_id"],
                "baseline_agent_id": info["agent_id"], "baseline_job_id": info.get("job_id", ""),
                "baseline_kind": info["kind"], "paired_examples": len(test.positives),
                "baseline_metrics": base.metrics, "improvements": improvements, "relative_change_percent": relative,
                "accuracy_test": acc.as_dict(), "f1_test": f1.as_dict(), "log_loss_test": loss.as_dict()}

    # --- the whole evaluation -------------------------------------------------------------------
    def evaluate(self, spec: EvalSpec) -> tuple[evaluation_pb2.Evaluation, bool, dict[str, Any]]:
        """Returns (stored evaluation, reused, internals for callers that analyse further)."""
        if spec.evaluation_id:
            resource_id(spec.evaluation_id, "evaluation_id")
            with self.lock_for(spec.evaluation_id):
                self.store.check_id_free("evaluations", spec.evaluation_id)
                existing = self.store.find(spec.evaluation_id)
                if existing is not None:
                    return self._reuse(existing, spec), True, {}
                return self._evaluate(spec)
        return self._evaluate(spec)

    def _reuse(self, existing: evaluation_pb2.Evaluation, spec: EvalSpec) -> evaluation_pb2.Evaluation:
        if (spec.agent_id and existing.agent_id != spec.agent_id) or (spec.job_id and existing.job_id != spec.job_id):
            raise AlreadyExists(f"evaluation '{spec.evaluation_id}' exists for another agent or job",
                                field="evaluation_id", metadata={"resource": "evaluation", "id": spec.evaluation_id})
        return existing

    def _is_policy(self, spec: EvalSpec) -> bool:
        if spec.model_kind not in MODEL_KINDS:
            raise InvalidArgument("model_kind", "must be 'policy', 'classifier' or empty")
        if spec.job_id:
            resource_id(spec.job_id, "job_id")
            policy, what = is_policy_job(self.peers.job(spec.job_id)), f"job '{spec.job_id}'"
        elif spec.agent_id:
            version = self.peers.serving_version(spec.agent_id, spec.version_id)
            policy, what = version.method == "grpo", f"version '{version.version_id}' of '{spec.agent_id}'"
        else:
            return False
        kind = "policy" if policy else "classifier"
        if spec.model_kind and spec.model_kind != kind:
            raise FailedPrecondition(f"{what} is a {'GRPO tool policy' if policy else 'classifier'}, "
                                     f"not a {'GRPO policy' if spec.model_kind == 'policy' else 'classifier'}",
                                     field="job_id" if spec.job_id else "agent_id", metadata={"model_kind": kind})
        if not policy:
            for name, present in (("checkpoint_id", spec.checkpoint_id), (spec.queries_field, spec.evaluation_queries)):
                if present:
                    raise InvalidArgument(name, f"applies to GRPO policies only; {what} is a classifier")
        return policy

    def _evaluate_policy(self, spec: EvalSpec) -> evaluation_pb2.Evaluation:
        given = [name for name, present in ((spec.examples_field, spec.examples), ("dataset_id", spec.dataset_id),
                                            ("test_set_job_id", spec.test_set_job_id),
                                            ("baseline_version_id", spec.baseline_version_id)) if present]
        if given:
            raise InvalidArgument(given[0], "a GRPO policy is evaluated on queries (evaluation_queries), "
                                  "not on labelled examples or another version")
        etype = self.evaluation_type(spec)
        return self.policies.evaluate(
            agent_id=spec.agent_id, version_id=spec.version_id, job_id=spec.job_id, checkpoint_id=spec.checkpoint_id,
            queries=spec.evaluation_queries, queries_field=spec.queries_field, metrics=spec.metrics,
            metrics_field=spec.metrics_field, evaluation_type=etype, baseline_job_id=spec.baseline_job_id,
            evaluation_id=spec.evaluation_id, seed=spec.seed)

    def _evaluate(self, spec: EvalSpec) -> tuple[evaluation_pb2.Evaluation, bool, dict[str, Any]]:
        if self._is_policy(spec):
            return self._evaluate_policy(spec), False, {}
        names = self.resolve_metrics(spec)
        computed = names + [m for m in spec.extra_metrics if m not in names]
        agent_id, version_id, job_id = spec.agent_id, spec.version_id, spec.job_id
        if job_id:
            resource_id(job_id, "job_id")
            job = self.peers.completed_job(job_id, "job_id")
            if agent_id and agent_id != job.agent_id:
                raise InvalidArgument("agent_id", f"job '{job_id}' belongs to agent '{job.agent_id}'")
            agent_id = job.agent_id
            version_id = version_id or job.model_version_id
        if not agent_id:
            raise InvalidArgument("agent_id", "is required (or give a job_id)")
        version = self.peers.serving_version(agent_id, version_id)
        test = self.test_set(spec, version.job_id)
        candidate = self.measure(agent_id, version.version_id, len(version.labels), test, computed, spec.seed)
        comparison: dict[str, Any] | None = None
        base_measured: Measured | None = None
        info, note = self.baseline(spec, agent_id, version)
        if info is not None:
            base_version = self.peers.version(info["agent_id"], info["version_id"])
            base_measured = self.measure(info["agent_id"], info["version_id"], len(base_version.labels), test,
                                         computed, spec.seed)
            comparison = self.compare(candidate, base_measured, info, test, spec.seed)
        elif note:
            comparison = {"available": False, "note": note}
        facts = EvalFacts(candidate.metrics, candidate.report["per_output"], candidate.report["labels"],
                          candidate.report["matrix"],
                          (candidate.consistency or {}).get("agreement_by_kind", {}), len(test.positives),
                          test.source, names, comparison)
        advice = evaluation_advice(facts)
        evaluation = build_evaluation(
            evaluation_id=spec.evaluation_id or random_id("eval", 12), agent_id=agent_id,
            version=version.version_id, job_id=job_id or version.job_id, test=test, names=names,
            measured=candidate, comparison=comparison, recommendations=advice.sorted_recommendations(),
            evaluation_type=spec.evaluation_type, seed=spec.seed)
        self.store.add_evaluation(evaluation)
        internals = {"candidate": candidate, "baseline": base_measured, "test": test, "advice": advice,
                     "version": version, "names": names}
        return evaluation, False, internals


def _rank(distribution: dict[str, float], expected: str) -> int:
    if expected not in distribution:
        return 0
    p = distribution[expected]
    # 1 + outputs scored strictly higher (ties do not push the expected output down).
    return 1 + sum(1 for v in distribution.values() if v > p)


def recommendation_proto(rec: dict[str, Any]) -> evaluation_pb2.EvaluationRecommendation:
    return evaluation_pb2.EvaluationRecommendation(**rec)


def build_evaluation(*, evaluation_id: str, agent_id: str, version: str, job_id: str, test: TestSet,
                     names: list[str], measured: Measured, comparison: dict[str, Any] | None,
                     recommendations: list[dict[str, Any]], evaluation_type: str,
                     seed: int) -> evaluation_pb2.Evaluation:
    report = measured.report
    ev = evaluation_pb2.Evaluation(
        evaluation_id=evaluation_id, agent_id=agent_id, version_id=version, dataset_id=test.dataset_id,
        example_count=len(test.positives), metrics=measured.metrics, create_time=to_timestamp(now()),
        job_id=job_id, test_set_source=test.source, test_set_job_id=test.job_id, requested_metrics=names,
        per_output=[evaluation_pb2.OutputMetrics(**o) for o in report["per_output"]],
        confusion_matrix=evaluation_pb2.ConfusionMatrix(
            labels=report["labels"], rows=[evaluation_pb2.ConfusionRow(counts=row) for row in report["matrix"]]),
        recommendations=[recommendation_proto(r) for r in recommendations], evaluation_type=evaluation_type,
        negative_example_count=len(test.negatives), seed=seed)
    if measured.cost:
        ev.cost.CopyFrom(evaluation_pb2.CostBreakdown(**measured.cost))
    if measured.consistency:
        ev.consistency.CopyFrom(evaluation_pb2.ConsistencyBreakdown(**measured.consistency))
    if comparison is not None:
        comp = evaluation_pb2.BaselineComparison(available=comparison["available"], note=comparison.get("note", ""))
        if comparison["available"]:
            comp.baseline_version_id = comparison["baseline_version_id"]
            comp.baseline_agent_id = comparison["baseline_agent_id"]
            comp.baseline_job_id = comparison["baseline_job_id"]
            comp.baseline_kind = comparison["baseline_kind"]
            comp.paired_examples = comparison["paired_examples"]
            comp.baseline_metrics.update(comparison["baseline_metrics"])
            comp.improvements.update(comparison["improvements"])
            comp.relative_change_percent.update(comparison["relative_change_percent"])
            comp.accuracy_test.CopyFrom(significance_proto(comparison["accuracy_test"]))
            comp.f1_test.CopyFrom(significance_proto(comparison["f1_test"]))
            comp.log_loss_test.CopyFrom(significance_proto(comparison["log_loss_test"]))
        ev.comparison.CopyFrom(comp)
    return ev

