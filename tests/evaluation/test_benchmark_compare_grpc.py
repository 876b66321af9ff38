"""RunBenchmark, CompareRuns and AnalyzeAndOptimize over real gRPC against real trained jobs."""
from __future__ import annotations

from collections import Counter

import grpc
import pytest

from trainhouse.common.grpc_errors import failure_of
from trainhouse.evaluation import benchmarks, reference_ladder
from trainhouse.evaluation.advice import grade
from tests.evaluation.conftest import AGENT, examples_pb
from tests.evaluation.test_evaluate_grpc import expected_mcnemar_p, held_out, predicted
from tests.intents import make_examples
from trainhouse.v1 import evaluation_service_pb2 as pb
from trainhouse.v1 import training_service_pb2

SUITES = ["standard-reasoning", "tool-usage", "multi-step-planning", "coherence", "consistency", "helpfulness"]


def test_suites_are_listed_with_definitions(ev):
    suites = ev.ListBenchmarkSuites(pb.ListBenchmarkSuitesRequest()).suites
    assert [s.name for s in suites] == SUITES
    for s in suites:
        assert s.version and s.description and sum(s.component_weights.values()) == pytest.approx(1.0)


def ladder_of(result) -> dict[str, float]:
    return {rung.name: rung.score for rung in result.ladder}


def test_benchmarks_score_rank_and_percentile(ev, trained):
    """Every result carries a percentile within its population: the reference ladder measured on
    the same probes in the same run, joined by the platform's other models once there are 5."""
    models = [(trained.weak.agent_id, trained.weak.model_version_id),
              (trained.other.agent_id, trained.other.model_version_id)]
    models += [(j.agent_id, j.model_version_id) for j in trained.extra]
    models.append((trained.garbage.agent_id, trained.garbage.model_version_id))
    models.append((AGENT, trained.strong.model_version_id))
    runs = []
    for i, (agent, version) in enumerate(models, start=1):
        run = ev.RunBenchmark(pb.RunBenchmarkRequest(agent_id=agent, version_id=version, suites=["helpfulness"])).run
        runs.append(run)
        result = run.results[0]
        population = result.population
        assert 0 <= result.percentile <= 100
        assert population.platform_models_available == i - 1
        assert population.ladder_members == len(result.ladder) >= 3
        assert {"majority_class", "nearest_neighbour", "untrained"} <= set(ladder_of(result))
        assert result.measured.startswith("Classifier probes") and "held-out (validation) examples" in result.data
        platform = [r.results[0].score for r in runs[:-1]] if i - 1 >= 5 else []
        assert population.kind == ("reference_ladder+platform" if platform else "reference_ladder")
        assert population.platform_models == len(platform)
        assert population.size == len(result.ladder) + len(platform)
        expected = reference_ladder.percentile(result.score, [r.score for r in result.ladder] + platform)
        assert result.percentile == pytest.approx(round(expected, 1))
    # The first model on a fresh platform: ranked against its ladder alone (it has no earlier version).
    first = runs[0].results[0]
    assert first.population.size == 3 and first.population.platform_models == 0
    # The strong version's ladder holds the agent's earlier (weak) version, answered by Predict.
    strong = runs[-1].results[0]
    assert ladder_of(strong)[f"version:{trained.weak.model_version_id}"] == pytest.approx(first.score)

    full = ev.RunBenchmark(pb.RunBenchmarkRequest(model_id=f"{AGENT}@{trained.strong.model_version_id}")).run
    assert [r.suite for r in full.results] == SUITES
    assert full.seed_job_id == trained.strong.job_id and full.seed_examples == trained.strong.validation_examples
    for r in full.results:
        assert 0 <= r.score <= 100 and r.probe_count > 0 and r.suite_version == "1"
        assert r.grade == grade(r.score) and r.component_scores
        assert 0 <= r.percentile <= 100 and r.population.size == len(r.ladder) + r.population.platform_models
        assert all(0 <= rung.score <= 100 and rung.description for rung in r.ladder)
    mean = sum(r.score for r in full.results) / len(full.results)
    assert full.overall_score == pytest.approx(round(mean, 2)) and full.overall_rank == grade(full.overall_score)
    by_suite = {r.suite: r for r in full.results}
    # helpfulness' accuracy component is the accuracy of the same predictions Evaluate measures
    evaluation = ev.Evaluate(pb.EvaluateRequest(agent_id=AGENT, metrics=["accuracy"])).evaluation
    assert by_suite["helpfulness"].component_scores["accuracy"] == pytest.approx(evaluation.metrics["accuracy"])
    assert by_suite["helpfulness"].score == pytest.approx(runs[-1].results[0].score)  # deterministic
    assert ladder_of(by_suite["helpfulness"]) == pytest.approx(ladder_of(strong))  # so is the ladder
    weak = runs[0].results[0]
    assert weak.score < by_suite["helpfulness"].score
    assert any("helpfulness" in rec for rec in runs[0].recommendations)
    stored = ev.GetBenchmarkRun(pb.GetBenchmarkRunRequest(benchmark_id=full.benchmark_id)).run
    assert stored == full


def test_majority_baseline_is_measured_on_the_same_probes(ev, trained, training):
    """The majority_class rung, recomputed here from the job's training split and held-out seeds."""
    result = ev.RunBenchmark(pb.RunBenchmarkRequest(agent_id=AGENT, version_id=trained.strong.model_version_id,
                                                    suites=["helpfulness"])).run.results[0]
    train = training.ListJobExamples(training_service_pb2.ListJobExamplesRequest(
        job_id=trained.strong.job_id, split="train", page_size=10000)).examples
    prior = Counter(x.expected_output for x in train)
    order = sorted(prior, key=lambda k: (-prior[k], k))
    seeds = benchmarks.canonical_seeds([{"input": x.input, "expected_output": x.expected_output}
                                        for x in held_out(training, trained.strong.job_id)])
    expected = [e["expected_output"] for e in seeds]
    accuracy = sum(e == order[0] for e in expected) / len(expected)
    balanced_recall = (1.0 if order[0] in expected else 0.0) / len(set(expected))
    shortlist = sum(e in order[:3] for e in expected) / len(expected)
    majority = 100 * (0.3 * accuracy + 0.5 * balanced_recall + 0.2 * shortlist)
    assert ladder_of(result)["majority_class"] == pytest.approx(round(majority, 2))
    rung = next(r for r in result.ladder if r.name == "majority_class")
    assert f"{len(train)} training examples of {trained.strong.job_id}" in rung.description


def test_percentile_separates_a_trained_model_from_a_garbage_one(ev, trained):
    """A well-trained model ranks above the trivial rungs of its ladder, a model that learned
    rotated labels ranks below them, on the same real task: fixed numbers could not pass both."""
    real_task = examples_pb(make_examples(10, seed=42))
    results = {}
    for name, job in (("strong", trained.strong), ("garbage", trained.garbage)):
        run = ev.RunBenchmark(pb.RunBenchmarkRequest(agent_id=job.agent_id, version_id=job.model_version_id,
                                                     suites=["helpfulness", "tool-usage"], examples=real_task)).run
        results[name] = {r.suite: r for r in run.results}
    for suite in ("helpfulness", "tool-usage"):
        good, bad = results["strong"][suite], results["garbage"][suite]
        good_ladder, bad_ladder = ladder_of(good), ladder_of(bad)
        assert good.score > max(good_ladder["majority_class"], good_ladder["untrained"])
        assert bad.score < min(bad_ladder["majority_class"], bad_ladder["untrained"])
        assert good.percentile >= 60 and bad.percentile <= 40 and good.percentile > bad.percentile
        assert "examples given with the request" in good.data


def test_benchmark_bad_input(ev, trained):
    with pytest.raises(grpc.RpcError) as err:
        ev.RunBenchmark(pb.RunBenchmarkRequest(agent_id=AGENT, suites=["tool-usage", "iq-test"]))
    failure = failure_of(err.value)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.field == "suites[1]"
    for name in SUITES:
        assert name in failure.message
    with pytest.raises(grpc.RpcError) as err:
        ev.RunBenchmark(pb.RunBenchmarkRequest(agent_id="nobody-at-all"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        ev.RunBenchmark(pb.RunBenchmarkRequest(model_id="no-at-sign"))
    assert failure_of(err.value).field == "model_id"
    inline = ev.RunBenchmark(pb.RunBenchmarkRequest(agent_id=AGENT, suites=["tool-usage"],
                                                    examples=examples_pb(make_examples(6, seed=42)))).run
    assert inline.seed_job_id == "" and inline.seed_examples == 24


def test_compare_two_runs_paired_on_shared_held_out_examples(ev, trained, training, registry):
    strong, weak = trained.strong, trained.weak
    resp = ev.CompareRuns(pb.CompareRunsRequest(run_ids=[weak.job_id, strong.job_id], statistical_tests=True,
                                                generate_recommendations=True, comparison_id="cmp-fixed-1"))
    comp = resp.comparison
    # Same data and seed: the same held-out split. Held-out texts that also occur in a training
    # split (the generator repeats templates) are not held out for that model, so they are dropped.
    trained_on = {(x.input, x.expected_output) for x in training.ListJobExamples(
        training_service_pb2.ListJobExamplesRequest(job_id=strong.job_id, split="train", page_size=10000)).examples}
    examples, seen = [], set()
    for x in held_out(training, strong.job_id):
        if (x.input, x.expected_output) not in trained_on | seen:
            seen.add((x.input, x.expected_output))
            examples.append(x)
    assert comp.evaluation_set == "shared" and comp.shared_examples == len(examples) >= 10
    assert list(comp.comparison_metrics) == ["accuracy", "loss", "validation_accuracy", "validation_loss",
                                             "training_time", "convergence_speed", "final_performance", "stability",
                                             "cost_efficiency"]
    assert comp.winner.job_id == strong.job_id and comp.winner.margin > 0
    assert [r.job_id for r in comp.overall_ranking] == [strong.job_id, weak.job_id]
    assert comp.winner.margin == pytest.approx(comp.overall_ranking[0].score - comp.overall_ranking[1].score, abs=1e-3)
    values = {r.job_id: r.values for r in comp.runs}
    for mc in comp.metric_comparisons:
        present = [v.value for v in mc.values]
        best = max(present) if mc.higher_is_better else min(present)
        assert mc.best.value == best and mc.best.job_id in values
    assert values[strong.job_id]["validation_accuracy"] == pytest.approx(strong.metrics["validation_accuracy"])
    # the McNemar test on the shared examples, recomputed from Predict
    texts = [x.input for x in examples]
    right = {j.job_id: [o == x.expected_output for o, x in zip(predicted(registry, AGENT, j.model_version_id, texts),
                                                                 examples)] for j in (weak, strong)}
    b = sum(w and not s for w, s in zip(right[weak.job_id], right[strong.job_id]))
    c = sum(s and not w for w, s in zip(right[weak.job_id], right[strong.job_id]))
    stats = comp.statistical_analysis
    acc = [p for p in stats.pairwise if p.metric == "accuracy"]
    assert len(acc) == 1 and acc[0].test.paired
    assert (acc[0].test.discordant_b, acc[0].test.discordant_c) == (b, c)
    assert acc[0].test.p_value == pytest.approx(expected_mcnemar_p(b, c))
    assert stats.p_value == pytest.approx(acc[0].test.adjusted_p_value) and 0 <= stats.p_value <= 1
    assert stats.significant == (stats.p_value < 0.05) and stats.winner_job_id == strong.job_id
    assert values[strong.job_id]["accuracy"] == pytest.approx(sum(right[strong.job_id]) / len(examples))
    assert {p.metric for p in stats.pairwise} == {"accuracy", "f1", "log_loss"}
    recs = comp.recommendations
    assert strong.job_id in recs.summary and recs.next_steps
    assert recs.optimal_config["epochs"] == 12 and "epochs" in recs.config_differences
    again = ev.CompareRuns(pb.CompareRunsRequest(run_ids=[weak.job_id, strong.job_id], comparison_id="cmp-fixed-1"))
    assert again.reused and again.comparison == comp
    assert ev.GetComparison(pb.GetComparisonRequest(comparison_id="cmp-fixed-1")).comparison == comp


def test_compare_three_runs_unpaired_with_holm(ev, trained):
    ids = [trained.strong.job_id, trained.weak.job_id, trained.other.job_id]
    comp = ev.CompareRuns(pb.CompareRunsRequest(run_ids=ids, statistical_tests=True,
                                                comparison_metrics=["accuracy", "training_time"])).comparison
    assert comp.evaluation_set == "own_validation"  # the other agent held out different examples
    acc = [p.test for p in comp.statistical_analysis.pairwise if p.metric == "accuracy"]
    assert len(acc) == 3 and all(t.test == "fisher_exact" and not t.paired for t in acc)
    ordered = sorted(acc, key=lambda t: t.p_value)
    for k, t in enumerate(ordered):  # Holm: adjusted >= raw, monotone in the raw order, <= 1
        assert t.p_value <= t.adjusted_p_value <= 1.0
        assert t.adjusted_p_value >= min(1.0, (3 - k) * t.p_value) - 1e-12
        if k:
            assert t.adjusted_p_value >= ordered[k - 1].adjusted_p_value
    assert [m.metric for m in comp.metric_comparisons] == ["accuracy", "training_time"]
    assert len(comp.overall_ranking) == 3 and not comp.HasField("recommendations")


@pytest.mark.parametrize("run_ids, metrics, field", [
    (["job-a"], [], "run_ids"),
    ([f"job-{i}" for i in range(11)], [], "run_ids"),
    (["job-a", "job-a"], [], "run_ids[1]"),
    (None, ["accuracy", "speediness"], "comparison_metrics[1]"),
])
def test_compare_refuses_bad_requests(ev, trained, run_ids, metrics, field):
    ids = run_ids if run_ids is not None else [trained.strong.job_id, trained.weak.job_id]
    with pytest.raises(grpc.RpcError) as err:
        ev.CompareRuns(pb.CompareRunsRequest(run_ids=ids, comparison_metrics=metrics))
    failure = failure_of(err.value)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.field == field
    if field.startswith("comparison_metrics"):
        assert "cost_efficiency" in failure.message and "convergence_speed" in failure.message


def test_analyze_and_optimize(ev, trained):
    resp = ev.AnalyzeAndOptimize(pb.AnalyzeAndOptimizeRequest(agent_id=AGENT))
    assert list(resp.optimization_goals) == ["minimize_latency", "maximize_accuracy", "minimize_cost",
                                             "maximize_consistency", "improve_calibration", "reduce_overfitting"]
    cur = resp.current
    assert cur.version_id == trained.strong.model_version_id and cur.evaluation_id
    for key in ("accuracy", "latency_p95_ms", "cost_per_task_usd", "consistency", "ece"):
        assert key in cur.metrics
    assert cur.hidden_sizes == [64] and cur.featurizer_dim == 16384 and cur.catalog_size == 4
    assert [v.version_id for v in resp.versions][0] == trained.strong.model_version_id
    assert {v.version_id for v in resp.versions} == {trained.strong.model_version_id, trained.weak.model_version_id}
    rules = {s.rule: s for s in resp.suggestions}
    # O6: p95 latency measured and the model is larger than the rule's bounds -> halve both
    assert rules["O6"].config_changes["hiddenSizes"] == [32]
    assert rules["O6"].config_changes["featurizer"]["dim"] == 8192
    for s in resp.suggestions:
        assert s.goal in resp.optimization_goals and s.signal and s.priority in ("high", "medium", "low")
    # The suggestions as a sweep to test them: O6's smaller hidden layer is one of its choices, and
    # the current job's config is its base.
    sweep = resp.suggested_sweep
    hidden = next(p for p in sweep.space if p.field == "hidden_sizes")
    assert [[x.number_value for x in v.list_value.values] for v in hidden.choices.values] == [[64], [32]]
    assert sweep.agent_id == AGENT and sweep.base_config.hidden_sizes == [64]
    latency_only = ev.AnalyzeAndOptimize(pb.AnalyzeAndOptimizeRequest(agent_id=AGENT,
                                                                      optimization_goals=["minimize_latency"]))
    assert {s.goal for s in latency_only.suggestions} == {"minimize_latency"}
    assert not latency_only.current.evaluated_now  # the stored comprehensive evaluation is reused
    with pytest.raises(grpc.RpcError) as err:
        ev.AnalyzeAndOptimize(pb.AnalyzeAndOptimizeRequest(agent_id=AGENT, optimization_goals=["be_better"]))
    failure = failure_of(err.value)
    assert failure.field == "optimization_goals[0]" and "minimize_latency" in failure.message
    with pytest.raises(grpc.RpcError) as err:
        ev.AnalyzeAndOptimize(pb.AnalyzeAndOptimizeRequest(agent_id="nobody-at-all"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
