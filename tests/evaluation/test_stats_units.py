"""Statistics, metrics and curve rules against hand-computed cases (no services needed)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from trainhouse.core.errors import FailedPrecondition
from trainhouse.core.trainer.cost import PriceModel as TrainerPrices
from scipy import stats as sps
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from trainhouse.core import stats
from trainhouse.evaluation import advice, benchmarks, curves, metrics, perturbations, pricing


@pytest.mark.parametrize("b, c, test, p", [
    (1, 6, "mcnemar_exact", 2 * (1 + 7) / 2 ** 7),          # 2 * P(X <= 1), X ~ Bin(7, 1/2)
    (0, 5, "mcnemar_exact", 2 / 2 ** 5),                     # 2 * P(X = 0), X ~ Bin(5, 1/2)
    (4, 4, "mcnemar_exact", 1.0),
    (10, 30, "mcnemar_chi2", math.erfc(math.sqrt((abs(10 - 30) - 1) ** 2 / 40 / 2))),  # chi2(1) tail
    (0, 0, "none", 1.0),
])
def test_mcnemar_matches_hand_computation(b, c, test, p):
    name, _, p_value = stats.mcnemar(b, c)
    assert name == test
    assert p_value == pytest.approx(p, rel=1e-9)
    assert 0.0 <= p_value <= 1.0


def test_mcnemar_exact_agrees_with_scipy_binomial_for_all_small_tables():
    for b in range(0, 13):
        for c in range(0, 13 - b):
            if b + c == 0:
                continue
            expected = min(1.0, 2 * sps.binom.cdf(min(b, c), b + c, 0.5))
            assert stats.mcnemar(b, c)[2] == pytest.approx(expected, rel=1e-9)


def test_paired_accuracy_counts_discordant_pairs():
    a = np.array([1, 1, 1, 0, 1, 0, 1, 1], dtype=bool)
    b = np.array([1, 0, 0, 0, 1, 1, 0, 0], dtype=bool)
    result = stats.paired_accuracy_test(a, b)
    assert (result.discordant_b, result.discordant_c) == (4, 1)
    assert result.p_value == pytest.approx(2 * (1 + 5) / 2 ** 5)
    assert result.difference == pytest.approx(6 / 8 - 3 / 8)
    assert result.effect_size == pytest.approx(2 * math.asin(math.sqrt(0.75)) - 2 * math.asin(math.sqrt(0.375)))


def test_fisher_exact_matches_hypergeometric_enumeration():
    a = np.array([True] * 8 + [False] * 2)
    b = np.array([True] * 1 + [False] * 5)
    # Two-sided Fisher: sum of the probabilities of tables with the same margins no likelier than observed.
    n_right, n_a, n = 9, 10, 16
    def prob(k):  # k = right answers in row a
        return math.comb(n_a, k) * math.comb(n - n_a, n_right - k) / math.comb(n, n_right)
    observed = prob(8)
    expected = sum(prob(k) for k in range(max(0, n_right - (n - n_a)), min(n_a, n_right) + 1)
                   if prob(k) <= observed * (1 + 1e-7))
    result = stats.unpaired_accuracy_test(a, b)
    assert result.test == "fisher_exact" and not result.paired
    assert result.p_value == pytest.approx(expected, rel=1e-9)


def test_holm_step_down():
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([0.5]) == [0.5]
    assert stats.holm([0.02, 0.6, 0.01, 0.04]) == pytest.approx([0.06, 0.6, 0.04, 0.08])
    assert max(stats.holm([0.9, 0.8])) <= 1.0
    # Six pairs of four runs would give six p-values; four by hand: sorted 0.005, 0.01, 0.03, 0.04
    # times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running maximum 0.02, 0.03, 0.06, 0.06.
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_is_monotone_and_bounded():
    """In the order of the raw p-values the adjusted ones never decrease, never undercut the raw
    p-value and never exceed 1 (or Holm could call a larger raw p significant and a smaller one not)."""
    rng = np.random.default_rng(4)
    for m in (1, 3, 6, 10, 45):
        raw = list(rng.uniform(0, 0.2, size=m)) + [0.5] * (m % 3)
        adjusted = stats.holm(raw)
        pairs = sorted(zip(raw, adjusted))
        for (p0, a0), (p1, a1) in zip(pairs, pairs[1:]):
            assert a1 >= a0
        assert all(p <= a <= 1.0 for p, a in pairs)


def test_significance_follows_the_holm_adjusted_p():
    results = [stats.TestResult(test="t", p_value=p) for p in (0.01, 0.04, 0.03, 0.005)]
    stats.apply_holm(results)
    assert [r.significant for r in results] == [True, False, False, True]
    assert [r.as_dict()["adjusted_p_value"] for r in results] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert all(r.as_dict()["p_value"] < 0.05 for r in results)  # raw p alone would call all four


def test_bootstrap_is_seeded_and_brackets_the_observed_difference():
    rng = np.random.default_rng(0)
    labels = ["a", "b", "c"]
    expected = [labels[i] for i in rng.integers(0, 3, 80)]
    good = [e if rng.random() < 0.9 else "a" for e in expected]
    bad = [e if rng.random() < 0.5 else "b" for e in expected]
    first = stats.paired_f1_test(expected, good, bad, seed=4)
    again = stats.paired_f1_test(expected, good, bad, seed=4)
    assert first.as_dict() == again.as_dict()
    macro = f1_score(expected, good, average="macro") - f1_score(expected, bad, average="macro")
    assert first.difference == pytest.approx(macro)
    assert first.ci_low <= first.difference <= first.ci_high
    assert first.p_value < 0.05
    same = stats.paired_f1_test(expected, good, good, seed=4)
    assert same.difference == 0 and same.p_value == 1.0
    losses_a, losses_b = rng.random(50), rng.random(50) + 0.5
    paired = stats.paired_mean_test(losses_a, losses_b, seed=1)
    assert paired.difference == pytest.approx(float(np.mean(losses_a - losses_b)))
    assert paired.ci_high < 0 and paired.p_value < 0.01
    unpaired = stats.unpaired_mean_test(losses_a, losses_b, seed=1)
    assert unpaired.p_value == pytest.approx(sps.mannwhitneyu(losses_a, losses_b).pvalue)


def test_weighted_macro_f1_equals_sklearn_on_unit_weights():
    rng = np.random.default_rng(3)
    exp, pred = rng.integers(0, 4, 60), rng.integers(0, 4, 60)
    ours = stats.weighted_macro_f1(np.ones((1, 60)), exp, pred, 4)[0]
    assert ours == pytest.approx(f1_score(exp, pred, average="macro"))


def test_classification_report_matches_sklearn():
    expected = ["x", "y", "y", "z", "z", "z", "x", "y"]
    predicted = ["x", "y", "z", "z", "z", "x", "y", "y"]
    report = metrics.classification_report(expected, predicted)
    p, r, f, _ = precision_recall_fscore_support(expected, predicted, average="macro", zero_division=0)
    m = report["metrics"]
    assert (m["precision"], m["recall"], m["f1"]) == pytest.approx((p, r, f))
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert report["matrix"] == confusion_matrix(expected, predicted, labels=["x", "y", "z"]).tolist()
    per = {o["output"]: o for o in report["per_output"]}
    assert per["z"]["support"] == 3 and per["z"]["predicted"] == 3 and per["z"]["recall"] == pytest.approx(2 / 3)


def test_ece_and_log_loss_by_hand():
    conf = np.array([0.9, 0.9, 0.6, 0.6])
    correct = np.array([1.0, 0.0, 1.0, 1.0])
    # bin (0.8, 0.9]: |0.5 - 0.9| * 2/4 ; bin (0.5, 0.6]: |1 - 0.6| * 2/4
    assert metrics.expected_calibration_error(conf, correct) == pytest.approx(0.4)
    assert metrics.log_losses(np.array([1.0, 0.5, 0.0])) == pytest.approx([0.0, math.log(2), -math.log(1e-7)])
    rel = metrics.relevance_metrics(np.array([1, 2, 4, 0]))
    assert rel == pytest.approx({"relevance": 0.5, "mrr": (1 + 0.5 + 0.25) / 4})
    s = metrics.safety_metrics(np.array([True, False, False]), np.array([0.9, 0.95, 0.5]), np.array([True, False]))
    assert s["confident_error_rate"] == pytest.approx(1 / 3)
    assert s["safety"] == pytest.approx(((1 - 1 / 3) + 0.5) / 2)


def test_unknown_metric_names_list_the_valid_ones():
    with pytest.raises(Exception) as err:
        metrics.validate_metric_names(["accuracy", "vibes"], "metrics")
    assert err.value.field == "metrics[1]"
    for name in ("accuracy", "consistency", "calibration", "latency", "cost"):
        assert name in err.value.message
    assert metrics.validate_metric_names([" F1_Score ", "f1_score"], "m") == ["f1_score"]


def test_convergence_rules():
    assert curves.convergence([1, 0.5, 0.3, 0.25, 0.24, 0.24, 0.24, 0.24], False)[0] == curves.CONVERGED
    assert curves.convergence([1, 0.9, 0.8, 0.7, 0.6, 0.5], False)[0] == curves.CONVERGING
    assert curves.convergence([1, 0.5, 0.4, 0.5, 0.7, 0.9], False)[0] == curves.DIVERGING
    assert curves.convergence([1, 0.5], False)[0] == curves.NOT_CONVERGED
    assert curves.convergence([1, 0.9, 0.8, 0.7, 0.6, 0.5], True)[0] == curves.CONVERGED  # early stopped
    status, signals, text = curves.convergence([0.4, 0.41, 0.38, 0.43, 0.39, 0.44], False)
    assert status == curves.NOT_CONVERGED and "C5" in text and signals["window_epochs"] == 3


def test_fit_and_efficiency_rules():
    c = curves.curves_from_points([("validation_loss", e, v) for e, v in enumerate([0.5, 0.4, 0.45, 0.5], 1)])
    level, signals, _ = curves.overfitting(c, {"accuracy": 0.98, "validation_accuracy": 0.96}, -0.05)
    assert level == curves.HIGH and signals["validation_loss_rise"] == pytest.approx(0.25)
    flat = curves.curves_from_points([("validation_loss", e, v) for e, v in enumerate([0.5, 0.4, 0.39, 0.39], 1)])
    assert curves.overfitting(flat, {"accuracy": 0.95, "validation_accuracy": 0.94}, -0.05)[0] == curves.NONE
    assert curves.overfitting(flat, {"accuracy": 1.0, "validation_accuracy": 0.9}, -0.05)[0] == curves.MEDIUM
    # the same 0.10 gap on 30 validation examples is within 1.96 * sqrt(0.9 * 0.1 / 30) = 0.107: no evidence
    level, signals, _ = curves.overfitting(flat, {"accuracy": 1.0, "validation_accuracy": 0.9,
                                                  "validation_examples": 30}, -0.05)
    assert level == curves.NONE and signals["accuracy_gap_margin"] == pytest.approx(1.96 * math.sqrt(0.09 / 30))
    assert curves.overfitting(flat, {"accuracy": 1.0, "validation_accuracy": 0.9,
                                     "validation_examples": 3000}, -0.05)[0] == curves.MEDIUM
    assert curves.overfitting(curves.Curves([], {}), {"accuracy": 0.9}, 0)[0] == curves.UNKNOWN
    assert curves.underfitting({"accuracy": 0.5})[0] == curves.HIGH
    assert curves.underfitting({"accuracy": 0.95, "validation_accuracy": 0.27,
                                "majority_baseline_accuracy": 0.25})[0] == curves.HIGH
    assert curves.underfitting({"accuracy": 0.85})[0] == curves.LOW
    assert curves.underfitting({"accuracy": 0.95, "validation_accuracy": 0.9,
                                "majority_baseline_accuracy": 0.25})[0] == curves.NONE
    score, parts = curves.efficiency([1.0, 0.5, 0.2, 0.1, 0.1], best_epoch=4)
    # e90 = 4 (first loss <= 1 - 0.9 * 0.9): speed 1 - 3/5; utilisation 4/5; no increase: stability 1
    assert parts["epochs_to_90pct"] == 4
    assert score == pytest.approx(100 * (0.5 * 0.4 + 0.3 * 0.8 + 0.2 * 1.0))
    assert curves.efficiency([1.2], best_epoch=1)[1]["speed"] == 0.0  # no loss reduction: no speed


def test_grade_scale_and_overall_score():
    assert [advice.grade(s) for s in (100, 97, 95, 90, 88, 85, 80, 79, 75, 70, 68, 64, 60, 59.9, 0)] == \
        ["A+", "A+", "A", "A-", "B+", "B", "B-", "C+", "C", "C-", "D+", "D", "D-", "F", "F"]
    perfect = curves.Analysis(curves.CONVERGED, curves.NONE, curves.NONE, 100.0)
    assert advice.overall_score(1.0, perfect) == 100.0
    worst = curves.Analysis(curves.DIVERGING, curves.HIGH, curves.HIGH, 0.0)
    assert advice.overall_score(0.5, worst) == pytest.approx(100 * (0.6 * 0.5 + 0.15 * 0.2))


def test_perturbations_are_deterministic_and_meaning_preserving():
    text = "I do not want to cancel my subscription today"
    for kind in perturbations.KINDS:
        first = perturbations.perturb(text, kind, seed=0, index=3)
        assert first == perturbations.perturb(text, kind, seed=0, index=3)
        assert first != text
    swapped = perturbations.perturb(text, "word_order", seed=0, index=3).split()
    assert swapped.index("not") == text.split().index("not")  # never moved
    assert sorted(swapped) == sorted(text.split())
    assert perturbations.perturb(text, "casing", 0, 3).lower() == text.lower()
    assert perturbations.variants(["ok"], seed=0)[0][1] in perturbations.KINDS


def test_price_model_and_benchmark_helpers(monkeypatch):
    monkeypatch.setenv("TRAINHOUSE_PRICE_PER_COMPUTE_SECOND", "0.01")
    monkeypatch.setenv("TRAINHOUSE_PRICE_PER_1K_TOKENS", "2")
    price = pricing.TaskPricing.from_env()
    cost = price.task_cost(0.5, ["refund my order, please", "hi"])  # 4 whitespace tokens and 1
    assert cost["tokens_per_task"] == pytest.approx(2.5)
    assert cost["cost_per_task_usd"] == pytest.approx(0.5 * 0.01 + 2.5 / 1000 * 2)
    assert price.training_cost({"training_seconds": 10}) == pytest.approx(0.1)
    assert price.training_cost({"cost_usd": 0.3, "training_seconds": 10}) == pytest.approx(0.3)
    # one price model: what the trainer bills a second and a token at is what a served task costs
    assert TrainerPrices.from_env() == price.prices
    monkeypatch.delenv("TRAINHOUSE_PRICE_PER_COMPUTE_SECOND")
    monkeypatch.setenv("TRAINHOUSE_PRICE_PER_CPU_SECOND", "0.02")  # the evaluation's earlier name
    assert pricing.TaskPricing.from_env().prices.usd_per_compute_second == 0.02
    monkeypatch.setenv("TRAINHOUSE_PRICE_PER_1K_TOKENS", "-1")
    with pytest.raises(FailedPrecondition) as err:  # a clear error, not a crash
        pricing.TaskPricing.from_env()
    assert "usd_per_1k_tokens" in err.value.message
    assert benchmarks.weighted_score({"a": 0.5, "b": 0.5}, {"a": 0.8}) == pytest.approx(80.0)
    with pytest.raises(Exception) as err:
        benchmarks.validate_suites(["tool-usage", "iq-test"])
    assert err.value.field == "suites[1]" and "multi-step-planning" in err.value.message
