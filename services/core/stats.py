"""Significance tests for comparing two models, built on scipy.stats.

Paired (both models answered the same examples):

* accuracy — McNemar's test on the discordant pairs: b = examples only the first model got right,
  c = examples only the second got right. Exact two-sided binomial test (b ~ Bin(b + c, 1/2))
  when b + c < 25, else the chi-square statistic with continuity correction
  (|b - c| - 1)^2 / (b + c) on 1 degree of freedom. Effect size: Cohen's h of the accuracies.
* F1 and log loss — paired bootstrap: the same resampled example indices for both models,
  ``BOOTSTRAP_RESAMPLES`` times; 95% percentile interval of the difference and a two-sided
  bootstrap p-value 2 * min(P(d* <= 0), P(d* >= 0)) with add-one smoothing. Effect size for log
  loss: Cohen's d_z (mean per-example difference / its standard deviation).

Unpaired (different examples): accuracy — Fisher's exact test on the 2x2 table of right/wrong
counts; F1 — independent bootstrap of each set; log loss — Mann-Whitney U on the per-example
losses (effect size Cliff's delta).

Several pairs: Holm's step-down correction of the p-values of one metric across all pairs.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

ALPHA = 0.05


class _LazyScipyStats:
    """scipy.stats takes ~0.5 s to import; load it on the first test, not at service start."""

    def __getattr__(self, name: str):
        from scipy import stats
        return getattr(stats, name)


sps = _LazyScipyStats()
BOOTSTRAP_RESAMPLES = 2000
MCNEMAR_EXACT_BELOW = 25


@dataclass
class TestResult:
    test: str
    p_value: float
    statistic: float = 0.0
    difference: float = 0.0
    ci_low: float = 0.0
    ci_high: float = 0.0
    effect_size: float = 0.0
    effect_size_kind: str = ""
    discordant_b: int = 0
    discordant_c: int = 0
    n: int = 0
    paired: bool = True
    alpha: float = ALPHA
    adjusted_p_value: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def significant(self) -> bool:
        p = self.p_value if self.adjusted_p_value is None else self.adjusted_p_value
        return p < self.alpha

    def as_dict(self) -> dict:
        return {"test": self.test, "statistic": self.statistic, "p_value": self.p_value,
                "adjusted_p_value": self.p_value if self.adjusted_p_value is None else self.adjusted_p_value,
                "significant": self.significant, "alpha": self.alpha, "difference": self.difference,
                "ci_low": self.ci_low, "ci_high": self.ci_high, "effect_size": self.effect_size,
                "effect_size_kind": self.effect_size_kind, "discordant_b": self.discordant_b,
                "discordant_c": self.discordant_c, "n": self.n, "paired": self.paired}


def _clip_p(p: float) -> float:
    return float(min(1.0, max(0.0, p)))


def cohens_h(p1: float, p2: float) -> float:
    """Effect size of two proportions: 2 asin(sqrt p1) - 2 asin(sqrt p2)."""
    return float(2 * math.asin(math.sqrt(min(max(p1, 0.0), 1.0))) - 2 * math.asin(math.sqrt(min(max(p2, 0.0), 1.0))))


def mcnemar(b: int, c: int) -> tuple[str, float, float]:
    """(test name, statistic, two-sided p) for discordant counts b and c."""
    n = b + c
    if n == 0:
        return "none", 0.0, 1.0
    if n < MCNEMAR_EXACT_BELOW:
        return "mcnemar_exact", float(min(b, c)), _clip_p(sps.binomtest(b, n, 0.5, alternative="two-sided").pvalue)
    statistic = (abs(b - c) - 1) ** 2 / n
    return "mcnemar_chi2", float(statistic), _clip_p(sps.chi2.sf(statistic, 1))


def paired_accuracy_test(correct_a: np.ndarray, correct_b: np.ndarray) -> TestResult:
    """McNemar on two aligned boolean vectors (model a vs model b on the same examples)."""
    a = np.asarray(correct_a, dtype=bool)
    b_ = np.asarray(correct_b, dtype=bool)
    b = int(np.sum(a & ~b_))
    c = int(np.sum(~a & b_))
    name, statistic, p = mcnemar(b, c)
    acc_a, acc_b = float(a.mean()) if len(a) else 0.0, float(b_.mean()) if len(b_) else 0.0
    return TestResult(test=name, p_value=p, statistic=statistic, difference=acc_a - acc_b,
                      effect_size=cohens_h(acc_a, acc_b), effect_size_kind="cohens_h", discordant_b=b,
                      discordant_c=c, n=len(a), paired=True)


def unpaired_accuracy_test(correct_a: np.ndarray, correct_b: np.ndarray) -> TestResult:
    """Fisher's exact test on [[right_a, wrong_a], [right_b, wrong_b]]."""
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    table = [[int(a.sum()), int((~a).sum())], [int(b.sum()), int((~b).sum())]]
    statistic, p = sps.fisher_exact(table, alternative="two-sided")
    acc_a, acc_b = float(a.mean()) if len(a) else 0.0, float(b.mean()) if len(b) else 0.0
    statistic = float(statistic) if math.isfinite(statistic) else 0.0
    return TestResult(test="fisher_exact", p_value=_clip_p(p), statistic=statistic, difference=acc_a - acc_b,
                      effect_size=cohens_h(acc_a, acc_b), effect_size_kind="cohens_h", n=len(a) + len(b),
                      paired=False)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (same order as given)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def _bootstrap_p(diffs: np.ndarray) -> float:
    b = len(diffs)
    low = (np.sum(diffs <= 0) + 1) / (b + 1)
    high = (np.sum(diffs >= 0) + 1) / (b + 1)
    return _clip_p(2 * min(low, high))


# Resamples are drawn in chunks so that (chunk, n) weight matrices stay around 100 MB at most.
_CHUNK_CELLS = 12_000_000


def _bootstrap(n: int, rng: np.random.Generator, resamples: int,
               statistic: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``statistic`` of every resample, given (chunk, n) counts of how often each example is drawn."""
    chunk = max(1, _CHUNK_CELLS // max(n, 1))
    out = []
    done = 0
    while done < resamples:
        size = min(chunk, resamples - done)
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=size).astype(float)
        out.append(statistic(weights))
        done += size
    return np.concatenate(out)


def weighted_macro_f1(weights: np.ndarray, expected: np.ndarray, predicted: np.ndarray, n_labels: int) -> np.ndarray:
    """Macro F1 per row of ``weights`` (example multiplicities), over the labels present in the
    resample's expected or predicted outputs (as classification_report does)."""
    scores = np.zeros(weights.shape[0])
    present_count = np.zeros(weights.shape[0])
    for label in range(n_labels):
        is_e = expected == label
        is_p = predicted == label
        tp = weights @ (is_e & is_p).astype(float)
        fp = weights @ (is_p & ~is_e).astype(float)
        fn = weights @ (is_e & ~is_p).astype(float)
        present = (weights @ (is_e | is_p).astype(float)) > 0
        denom = 2 * tp + fp + fn
        f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
        scores += np.where(present, f1, 0.0)
        present_count += present
    return np.divide(scores, present_count, out=np.zeros_like(scores), where=present_count > 0)


def _encode(*label_lists: Sequence[str]) -> tuple[list[np.ndarray], int]:
    labels = sorted(set().union(*[set(x) for x in label_lists]))
    index = {label: i for i, label in enumerate(labels)}
    return [np.array([index[x] for x in xs], dtype=np.int64) for xs in label_lists], len(labels)


def paired_f1_test(expected: Sequence[str], pred_a: Sequence[str], pred_b: Sequence[str], seed: int,
                   resamples: int = BOOTSTRAP_RESAMPLES) -> TestResult:
    (exp, pa, pb), k = _encode(expected, pred_a, pred_b)
    n = len(exp)
    full = np.ones((1, n))
    observed = float(weighted_macro_f1(full, exp, pa, k)[0] - weighted_macro_f1(full, exp, pb, k)[0])
    rng = np.random.default_rng([seed, 11])
    diffs = _bootstrap(n, rng, resamples,
                       lambda w: weighted_macro_f1(w, exp, pa, k) - weighted_macro_f1(w, exp, pb, k))
    low, high = np.percentile(diffs, [2.5, 97.5])
    sd = float(np.std(diffs))
    return TestResult(test="paired_bootstrap", p_value=_bootstrap_p(diffs), statistic=observed / sd if sd > 0 else 0.0,
                      difference=observed, ci_low=float(low), ci_high=float(high),
                      effect_size=observed / sd if sd > 0 else 0.0, effect_size_kind="bootstrap_z", n=n, paired=True)


def unpaired_f1_test(exp_a: Sequence[str], pred_a: Sequence[str], exp_b: Sequence[str], pred_b: Sequence[str],
                     seed: int, resamples: int = BOOTSTRAP_RESAMPLES) -> TestResult:
    (ea, pa, eb, pb), k = _encode(exp_a, pred_a, exp_b, pred_b)
    rng = np.random.default_rng([seed, 12])
    f1_a = weighted_macro_f1(np.ones((1, len(ea))), ea, pa, k)[0]
    f1_b = weighted_macro_f1(np.ones((1, len(eb))), eb, pb, k)[0]
    diffs = (_bootstrap(len(ea), rng, resamples, lambda w: weighted_macro_f1(w, ea, pa, k))
             - _bootstrap(len(eb), rng, resamples, lambda w: weighted_macro_f1(w, eb, pb, k)))
    low, high = np.percentile(diffs, [2.5, 97.5])
    sd = float(np.std(diffs))
    observed = float(f1_a - f1_b)
    return TestResult(test="bootstrap", p_value=_bootstrap_p(diffs), statistic=observed / sd if sd > 0 else 0.0,
                      difference=observed, ci_low=float(low), ci_high=float(high),
                      effect_size=observed / sd if sd > 0 else 0.0, effect_size_kind="bootstrap_z",
                      n=len(ea) + len(eb), paired=False)


def paired_mean_test(values_a: np.ndarray, values_b: np.ndarray, seed: int,
                     resamples: int = BOOTSTRAP_RESAMPLES) -> TestResult:
    """Paired bootstrap of mean(a) - mean(b) for per-example values (e.g. log losses)."""
    a = np.asarray(values_a, dtype=float)
    b = np.asarray(values_b, dtype=float)
    d = a - b
    n = len(d)
    rng = np.random.default_rng([seed, 13])
    diffs = _bootstrap(n, rng, resamples, lambda w: (w @ d) / n)
    low, high = np.percentile(diffs, [2.5, 97.5])
    sd = float(np.std(d, ddof=1)) if n > 1 else 0.0
    return TestResult(test="paired_bootstrap", p_value=_bootstrap_p(diffs), statistic=float(d.mean()),
                      difference=float(d.mean()), ci_low=float(low), ci_high=float(high),
                      effect_size=float(d.mean() / sd) if sd > 0 else 0.0, effect_size_kind="cohens_d", n=n,
                      paired=True)


def unpaired_mean_test(values_a: np.ndarray, values_b: np.ndarray, seed: int,
                       resamples: int = BOOTSTRAP_RESAMPLES) -> TestResult:
    """Mann-Whitney U on two independent samples; CI of the mean difference by bootstrap."""
    a = np.asarray(values_a, dtype=float)
    b = np.asarray(values_b, dtype=float)
    u, p = sps.mannwhitneyu(a, b, alternative="two-sided")
    rng = np.random.default_rng([seed, 14])
    diffs = (_bootstrap(len(a), rng, resamples, lambda w: (w @ a) / len(a))
             - _bootstrap(len(b), rng, resamples, lambda w: (w @ b) / len(b)))
    low, high = np.percentile(diffs, [2.5, 97.5])
    delta = 2.0 * float(u) / (len(a) * len(b)) - 1.0
    return TestResult(test="mann_whitney_u", p_value=_clip_p(p), statistic=float(u),
                      difference=float(a.mean() - b.mean()), ci_low=float(low), ci_high=float(high),
                      effect_size=delta, effect_size_kind="cliffs_delta", n=len(a) + len(b), paired=False)


def apply_holm(results: Sequence[TestResult]) -> None:
    adjusted = holm([r.p_value for r in results])
    for r, p in zip(results, adjusted):
        r.adjusted_p_value = p
