"""compareTrainingRuns: A/B comparison of 2..10 completed jobs with statistics.

Evaluation set. With ``examples`` in the request every run's version answers them (paired).
Otherwise the runs' held-out ("validation") splits are intersected and every example any run
trained on is removed; with at least ``MIN_SHARED`` examples left every run's version answers
those (paired), else each run answers its own held-out split (unpaired).

Metric values per run (direction in ``HIGHER_IS_BETTER``):
  accuracy           accuracy of the run's version on the evaluation set (Predict)
  final_performance  macro F1 on the evaluation set
  loss               the job's final training loss (of the weights it kept)
  validation_loss    the job's final validation loss
  validation_accuracy the job's final validation accuracy
  training_time      the job's measured training seconds
  convergence_speed  epochs until the training loss achieved 90% of its total reduction
  stability          1 - share of epoch-to-epoch increases of the training loss
  cost_efficiency    evaluation accuracy per USD of training cost (services/evaluation/pricing.py)

Ranking: per metric, runs are min-max normalised to 0..1 (1 = best; all equal -> 1 for all);
a run's score is the mean over the metrics it has; the winner's margin is its score minus the
runner-up's. Statistics (when asked): for every pair, accuracy (McNemar paired / Fisher exact
unpaired), macro F1 (bootstrap CI) and log loss (paired bootstrap / Mann-Whitney U), each
metric's p-values Holm-corrected across the pairs; the headline is winner vs runner-up on
accuracy.
"""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from google.protobuf import struct_pb2

from trainhouse.core.errors import AlreadyExists, InvalidArgument
from trainhouse.common.timeutil import now, to_timestamp
from trainhouse.common.validation import resource_id
from trainhouse.evaluation import curves as C
from trainhouse.core import stats
from trainhouse.evaluation.evaluator import (Evaluator, Measured, TestSet, build_evaluation, significance_proto,
                                           split_feedback, validated_examples)
from trainhouse.evaluation.peers import job_config
from trainhouse.evaluation.pricing import TaskPricing
from trainhouse.evaluation.training_results import final_metrics
from trainhouse.v1 import run_comparison_pb2
from trainhouse.core.ids import random_id

COMPARISON_METRICS = ("accuracy", "loss", "validation_accuracy", "validation_loss", "training_time",
                      "convergence_speed", "final_performance", "stability", "cost_efficiency")
HIGHER_IS_BETTER = {"accuracy": True, "loss": False, "validation_accuracy": True, "validation_loss": False,
                    "training_time": False, "convergence_speed": False, "final_performance": True,
                    "stability": True, "cost_efficiency": True}
MIN_RUNS, MAX_RUNS = 2, 10
MIN_SHARED = 10
EVAL_METRICS = ["accuracy", "f1", "log_loss"]


def _key(e: dict[str, Any]) -> tuple[str, str]:
    return (e["input"], e["expected_output"])


def validate_metrics(names: list[str]) -> list[str]:
    if not names:
        return list(COMPARISON_METRICS)
    out = []
    for i, raw in enumerate(names):
        name = raw.strip().lower()
        if name not in HIGHER_IS_BETTER:
            raise InvalidArgument(f"comparison_metrics[{i}]", f"unknown comparison metric '{raw}'; valid: "
                                  + ", ".join(COMPARISON_METRICS), metadata={"valid": ",".join(COMPARISON_METRICS)})
        if name not in out:
            out.append(name)
    return out


def validate_run_ids(run_ids: list[str]) -> list[str]:
    if not MIN_RUNS <= len(run_ids) <= MAX_RUNS:
        raise InvalidArgument("run_ids", f"give {MIN_RUNS} to {MAX_RUNS} job ids to compare (got {len(run_ids)})")
    seen = set()
    for i, job_id in enumerate(run_ids):
        resource_id(job_id, f"run_ids[{i}]")
        if job_id in seen:
            raise InvalidArgument(f"run_ids[{i}]", f"job '{job_id}' is listed twice")
        seen.add(job_id)
    return list(run_ids)


def normalised_scores(values: dict[str, dict[str, float]], metrics: list[str], run_ids: list[str]) -> dict[str, float]:
    per_run: dict[str, list[float]] = {r: [] for r in run_ids}
    for metric in metrics:
        present = {r: values[r][metric] for r in run_ids if metric in values[r]}
        if not present:
            continue
        lo, hi = min(present.values()), max(present.values())
        for r, v in present.items():
            if hi == lo:
                norm = 1.0
            else:
                norm = (v - lo) / (hi - lo)
                if not HIGHER_IS_BETTER[metric]:
                    norm = 1.0 - norm
            per_run[r].append(norm)
    return {r: float(np.mean(v)) if v else 0.0 for r, v in per_run.items()}


class RunComparer:
    def __init__(self, evaluator: Evaluator):
        self.evaluator = evaluator
        self.peers = evaluator.peers
        self.store = evaluator.store

    def compare(self, run_ids: list[str], metrics: list[str], statistical_tests: bool, recommendations: bool,
                examples: list[dict[str, Any]], comparison_id: str, seed: int
                ) -> tuple[run_comparison_pb2.RunComparison, bool]:
        run_ids = validate_run_ids(run_ids)
        metrics = validate_metrics(metrics)
        if comparison_id:
            resource_id(comparison_id, "comparison_id")
            with self.evaluator.lock_for(comparison_id):
                self.store.check_id_free("comparisons", comparison_id)
                found = self.store.find_comparison(comparison_id)
                if found is not None:
                    if [r.job_id for r in found.runs] != run_ids:
                        raise AlreadyExists(f"comparison '{comparison_id}' exists for other runs", field="comparison_id")
                    return found, True
                return self._compare(run_ids, metrics, statistical_tests, recommendations, examples, comparison_id,
                                     seed), False
        return self._compare(run_ids, metrics, statistical_tests, recommendations, examples, "", seed), False

    def _test_sets(self, jobs, examples) -> tuple[dict[str, TestSet], str, int]:
        if examples:
            items = validated_examples(examples, "examples")
            test = TestSet(*split_feedback(items), source="inline")
            if not test.positives:
                raise InvalidArgument("examples", "no examples with an expected output")
            return {j.job_id: test for j in jobs}, "shared", len(test.positives)
        validation = {j.job_id: split_feedback(self.peers.job_examples(j.job_id, "validation"))[0] for j in jobs}
        trained: set[tuple[str, str]] = set()
        for j in jobs:
            trained |= {_key(e) for e in self.peers.job_examples(j.job_id, "train")}
        common = set.intersection(*[{_key(e) for e in v} for v in validation.values()]) - trained
        first = validation[jobs[0].job_id]
        shared = [e for e in first if _key(e) in common]
        # Keep one copy per key, in the first run's order.
        seen, unique = set(), []
        for e in shared:
            if _key(e) not in seen:
                seen.add(_key(e))
                unique.append(e)
        if len(unique) >= MIN_SHARED:
            test = TestSet(unique, [], source="shared_validation")
            return {j.job_id: test for j in jobs}, "shared", len(unique)
        return ({j.job_id: TestSet(validation[j.job_id], [], source="job:validation", job_id=j.job_id)
                 for j in jobs}, "own_validation", 0)

    def _compare(self, run_ids: list[str], metrics: list[str], statistical_tests: bool, want_recs: bool,
                 examples: list[dict[str, Any]], comparison_id: str, seed: int) -> run_comparison_pb2.RunComparison:
        jobs = [self.peers.completed_job(job_id, f"run_ids[{i}]") for i, job_id in enumerate(run_ids)]
        tests, mode, shared_n = self._test_sets(jobs, examples)
        price = TaskPricing.from_env()
        measured: dict[str, Measured] = {}
        analyses: dict[str, C.Analysis] = {}
        values: dict[str, dict[str, float]] = {}
        runs = []
        for job in jobs:
            points = self.peers.metric_points(job.job_id)
            curves = C.curves_from_points(points)
            final = final_metrics(job)
            analyses[job.job_id] = C.analyze(curves, final)
            v: dict[str, float] = {}
            test = tests[job.job_id]
            evaluation_id = ""
            if test.positives:
                version = self.peers.version(job.agent_id, job.model_version_id)
                m = self.evaluator.measure(job.agent_id, job.model_version_id, len(version.labels), test,
                                           EVAL_METRICS, seed)
                measured[job.job_id] = m
                ev = build_evaluation(evaluation_id=random_id("eval", 12), agent_id=job.agent_id,
                                      version=job.model_version_id, job_id=job.job_id, test=test,
                                      names=EVAL_METRICS, measured=m, comparison=None, recommendations=[],
                                      evaluation_type="comparison", seed=seed)
                self.store.add_evaluation(ev)
                evaluation_id = ev.evaluation_id
                v["accuracy"] = m.metrics["accuracy"]
                v["final_performance"] = m.metrics["f1"]
                v["f1"] = m.metrics["f1"]
                v["log_loss"] = m.metrics["log_loss"]
            for name in ("loss", "validation_loss", "validation_accuracy"):
                if name in final:
                    v[name] = final[name]
            if "training_seconds" in final:
                v["training_time"] = final["training_seconds"]
            elif job.HasField("start_time") and job.HasField("end_time"):
                v["training_time"] = (job.end_time.ToDatetime() - job.start_time.ToDatetime()).total_seconds()
            loss_curve = curves.get("loss")
            speed = C.convergence_speed(loss_curve)
            if speed is not None:
                v["convergence_speed"] = speed
            stability = C.loss_stability(loss_curve)
            if stability is not None:
                v["stability"] = stability
            cost = price.training_cost(final)
            if cost and "accuracy" in v:
                v["cost_efficiency"] = v["accuracy"] / cost
            values[job.job_id] = v
            config = struct_pb2.Struct()
            config.update(job_config(job))
            runs.append(run_comparison_pb2.ComparedRun(job_id=job.job_id, agent_id=job.agent_id,
                                                       version_id=job.model_version_id, values=v, config=config,
                                                       evaluated_examples=len(test.positives),
                                                       evaluation_id=evaluation_id))
        out = run_comparison_pb2.RunComparison(
            comparison_id=comparison_id or random_id("cmp", 12), runs=runs, comparison_metrics=metrics,
            create_time=to_timestamp(now()), evaluation_set=mode, shared_examples=shared_n)
        for metric in metrics:
            mc = run_comparison_pb2.MetricComparison(metric=metric, higher_is_better=HIGHER_IS_BETTER[metric])
            present = [(r, values[r][metric]) for r in run_ids if metric in values[r]]
            mc.missing_job_ids.extend(r for r in run_ids if metric not in values[r])
            mc.values.extend(run_comparison_pb2.RunMetricValue(job_id=r, value=val) for r, val in present)
            if present:
                order = sorted(present, key=lambda rv: rv[1], reverse=HIGHER_IS_BETTER[metric])
                mc.best.CopyFrom(run_comparison_pb2.RunMetricValue(job_id=order[0][0], value=order[0][1]))
                mc.worst.CopyFrom(run_comparison_pb2.RunMetricValue(job_id=order[-1][0], value=order[-1][1]))
            out.metric_comparisons.append(mc)
        scores = normalised_scores(values, metrics, run_ids)
        ranking = sorted(run_ids, key=lambda r: (-scores[r], run_ids.index(r)))
        for rank, r in enumerate(ranking, start=1):
            out.overall_ranking.append(run_comparison_pb2.RankedRun(job_id=r, score=round(scores[r], 4), rank=rank))
        margin = scores[ranking[0]] - scores[ranking[1]]
        out.winner.CopyFrom(run_comparison_pb2.RankedRun(job_id=ranking[0], score=round(scores[ranking[0]], 4),
                                                         rank=1, margin=round(margin, 4)))
        headline = None
        if statistical_tests:
            headline = self._statistics(out, run_ids, ranking, measured, tests, mode, shared_n, seed)
        if want_recs:
            self._recommendations(out, jobs, ranking, analyses, headline, mode, shared_n)
        self.store.add_comparison(out)
        return out

    def _statistics(self, out, run_ids, ranking, measured, tests, mode, shared_n, seed):
        paired = mode == "shared"
        tests_by_metric: dict[str, list[tuple[str, str, stats.TestResult]]] = {"accuracy": [], "f1": [], "log_loss": []}
        for a, b in itertools.combinations(run_ids, 2):
            if a not in measured or b not in measured:
                continue
            ma, mb = measured[a], measured[b]
            if paired:
                expected = tests[a].expected
                tests_by_metric["accuracy"].append((a, b, stats.paired_accuracy_test(ma.correct, mb.correct)))
                tests_by_metric["f1"].append((a, b, stats.paired_f1_test(expected, ma.predicted, mb.predicted, seed)))
                tests_by_metric["log_loss"].append((a, b, stats.paired_mean_test(ma.losses, mb.losses, seed)))
            else:
                tests_by_metric["accuracy"].append((a, b, stats.unpaired_accuracy_test(ma.correct, mb.correct)))
                tests_by_metric["f1"].append((a, b, stats.unpaired_f1_test(tests[a].expected, ma.predicted,
                                                                           tests[b].expected, mb.predicted, seed)))
                tests_by_metric["log_loss"].append((a, b, stats.unpaired_mean_test(ma.losses, mb.losses, seed)))
        analysis = run_comparison_pb2.StatisticalAnalysis(primary_metric="accuracy", paired=paired,
                                                          shared_examples=shared_n, correction="holm",
                                                          alpha=stats.ALPHA)
        for metric, results in tests_by_metric.items():
            stats.apply_holm([r for _, _, r in results])
            for a, b, r in results:
                analysis.pairwise.append(run_comparison_pb2.PairwiseTest(job_a=a, job_b=b, metric=metric,
                                                                         test=significance_proto(r.as_dict())))
        winner, runner = ranking[0], ranking[1]
        analysis.winner_job_id, analysis.runner_up_job_id = winner, runner
        head = None
        for a, b, r in tests_by_metric["accuracy"]:
            if {a, b} == {winner, runner}:
                head = r
        if head is None:
            analysis.note = "no accuracy test between the winner and the runner-up (a run had no evaluation examples)"
        else:
            acc_w = float(measured[winner].correct.mean())
            acc_r = float(measured[runner].correct.mean())
            analysis.significant = head.significant
            analysis.p_value = float(head.adjusted_p_value if head.adjusted_p_value is not None else head.p_value)
            analysis.effect_size = stats.cohens_h(acc_w, acc_r)
            analysis.improvement_percent = (acc_w - acc_r) / acc_r * 100.0 if acc_r > 0 else 0.0
            analysis.note = (f"{head.test} on {head.n} {'shared' if paired else 'separate'} examples, "
                             f"Holm-adjusted over {len(tests_by_metric['accuracy'])} pair(s)")
        out.statistical_analysis.CopyFrom(analysis)
        return analysis

    def _recommendations(self, out, jobs, ranking, analyses, headline, mode, shared_n) -> None:
        by_id = {j.job_id: j for j in jobs}
        winner = by_id[ranking[0]]
        configs = {j.job_id: job_config(j) for j in jobs}
        keys = sorted(set().union(*[set(c) for c in configs.values()]))
        differences = {k: {j: configs[j].get(k) for j in configs} for k in keys
                       if len({repr(configs[j].get(k)) for j in configs}) > 1}
        summary = (f"Run {winner.job_id} ranks first (score {out.winner.score:.2f}, margin {out.winner.margin:.2f} "
                   f"over {ranking[1]}).")
        if headline is not None and headline.winner_job_id:
            if headline.note.startswith("no accuracy test"):
                summary += " " + headline.note + "."
            elif headline.significant:
                summary += (f" Its accuracy lead is statistically significant (p={headline.p_value:.3g}, "
                            f"{headline.improvement_percent:+.1f}%).")
            else:
                summary += (f" Its accuracy difference is not statistically significant (p={headline.p_value:.3g}).")
        steps: list[str] = []
        if headline is not None and not headline.significant:
            steps.append(f"Differences are not significant at alpha={stats.ALPHA}: evaluate on more examples or "
                         "repeat the runs with other seeds before choosing")
        for field_name, per_run in list(differences.items())[:5]:
            steps.append(f"Adopt {field_name}={per_run[winner.job_id]!r} from the winning run "
                         f"(others: {', '.join(f'{v!r}' for j, v in per_run.items() if j != winner.job_id)})")
        analysis = analyses[winner.job_id]
        if analysis.convergence_status == C.CONVERGING:
            steps.append("Train the winning configuration for more epochs: its loss was still falling")
        if analysis.overfitting_risk in (C.MEDIUM, C.HIGH):
            steps.append(f"Regularise the winning configuration: overfitting risk {analysis.overfitting_risk}")
        if mode == "own_validation":
            steps.append("The runs held out different examples: pass common examples (or train on the same data "
                         "and seed) for paired tests")
        if not steps:
            steps.append(f"Deploy {winner.model_version_id} of agent {winner.agent_id} from the winning run")
        recs = run_comparison_pb2.ComparisonRecommendations(summary=summary, next_steps=steps)
        optimal = struct_pb2.Struct()
        optimal.update(configs[winner.job_id])
        recs.optimal_config.CopyFrom(optimal)
        diff_struct = struct_pb2.Struct()
        diff_struct.update({k: {j: v for j, v in per.items()} for k, per in differences.items()})
        recs.config_differences.CopyFrom(diff_struct)
        out.recommendations.CopyFrom(recs)
