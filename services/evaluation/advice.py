"""Grades, overall scores, strengths, weaknesses and recommendations, by documented rules.

Every recommendation names the signal that triggered it and the rule id (README, "Rules").
Nothing here measures anything: it reads numbers measured elsewhere (evaluations, curves).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trainhouse.evaluation import curves as C
from trainhouse.evaluation.metrics import QUALITY_KEYS

# Letter grades (the usual US scale): lower bound of each grade, best first.
GRADE_SCALE: tuple[tuple[float, str], ...] = (
    (97, "A+"), (93, "A"), (90, "A-"), (87, "B+"), (83, "B"), (80, "B-"),
    (77, "C+"), (73, "C"), (70, "C-"), (67, "D+"), (63, "D"), (60, "D-"), (0, "F"))

CONVERGENCE_SCORE = {C.CONVERGED: 1.0, C.CONVERGING: 0.7, C.NOT_CONVERGED: 0.4, C.DIVERGING: 0.0}
RISK_PENALTY = {C.NONE: 0.0, C.LOW: 0.1, C.MEDIUM: 0.4, C.HIGH: 0.8, C.UNKNOWN: 0.2}
PRIORITY_RANK = {"high": 0, "medium": 1, "low": 2}

WEAK_OUTPUT_F1 = 0.7
STRONG, WEAK = 0.90, 0.70
CONSISTENCY_TARGET = 0.90
ECE_LIMIT = 0.10
LATENCY_P95_LIMIT_MS = 50.0
CONFIDENT_ERROR_LIMIT = 0.05
SMALL_TEST_SET = 30
PRECISION_RECALL_GAP = 0.05


def grade(score: float) -> str:
    for bound, letter in GRADE_SCALE:
        if score >= bound:
            return letter
    return "F"


def quality(metrics: dict[str, float], requested: list[str]) -> tuple[float, list[str]]:
    """Mean of the requested share-valued metrics (1 - ECE for calibration); accuracy if none."""
    values, used = [], []
    for name in requested:
        key = QUALITY_KEYS.get(name)
        if key and key in metrics:
            values.append(metrics[key])
            used.append(name)
        elif name == "calibration" and "ece" in metrics:
            values.append(1.0 - metrics["ece"])
            used.append(name)
    if not values:
        return metrics.get("accuracy", 0.0), ["accuracy"]
    return sum(values) / len(values), used


def overall_score(quality_value: float, analysis: C.Analysis) -> float:
    """100 * (0.6 quality + 0.15 convergence + 0.15 fit + 0.10 efficiency/100)."""
    fit = 1.0 - max(RISK_PENALTY[analysis.overfitting_risk], RISK_PENALTY[analysis.underfitting_risk])
    score = 100.0 * (0.6 * quality_value + 0.15 * CONVERGENCE_SCORE[analysis.convergence_status]
                     + 0.15 * fit + 0.10 * analysis.training_efficiency / 100.0)
    return round(max(0.0, min(100.0, score)), 1)


@dataclass
class Advice:
    strengths: list[str] = field(default_factory=list)
    weaknesses: list[str] = field(default_factory=list)
    recommendations: list[dict[str, Any]] = field(default_factory=list)

    def recommend(self, rule: str, priority: str, category: str, text: str, impact: str, signal: str,
                  value: float) -> None:
        self.recommendations.append({"rule": rule, "priority": priority, "category": category,
                                     "recommendation": text, "expected_impact": impact, "signal": signal,
                                     "signal_value": float(value)})

    def sorted_recommendations(self) -> list[dict[str, Any]]:
        return sorted(self.recommendations, key=lambda r: (PRIORITY_RANK[r["priority"]], r["rule"]))


@dataclass
class EvalFacts:
    """What the evaluation rules read, in plain values."""

    metrics: dict[str, float]
    per_output: list[dict[str, Any]]
    labels: list[str]
    matrix: list[list[int]]
    consistency_by_kind: dict[str, float]
    example_count: int
    test_set_source: str
    requested: list[str]
    comparison: dict[str, Any] | None = None


def _false_positives(facts: EvalFacts) -> tuple[str, int]:
    best, count = "", 0
    for j, label in enumerate(facts.labels):
        fp = sum(row[j] for i, row in enumerate(facts.matrix) if i != j)
        if fp > count:
            best, count = label, fp
    return best, count


def evaluation_advice(facts: EvalFacts, advice: Advice | None = None) -> Advice:
    """Rules E1..E9 on an evaluation's numbers."""
    advice = advice or Advice()
    m = facts.metrics
    for name in facts.requested:
        key = QUALITY_KEYS.get(name)
        if key and key in m:
            if m[key] >= STRONG:
                advice.strengths.append(f"High {name} ({m[key]:.2f})")
            elif m[key] < WEAK:
                advice.weaknesses.append(f"Low {name} ({m[key]:.2f})")
    scored = [o for o in facts.per_output if o["support"] > 0]
    if scored and any(k in m for k in ("f1", "precision", "recall")):
        worst = min(scored, key=lambda o: (o["f1"], o["output"]))
        if worst["f1"] < WEAK_OUTPUT_F1:
            advice.weaknesses.append(f"Weak on output '{worst['output']}' (F1 {worst['f1']:.2f}, "
                                     f"{worst['support']} test examples)")
            advice.recommend("E1", "high" if worst["f1"] < 0.4 else "medium", "data",
                             f"Add training examples for output '{worst['output']}'",
                             f"raises F1 of '{worst['output']}' (now {worst['f1']:.2f}) and macro F1 "
                             f"(now {m.get('f1', 0):.2f})", "per_output_f1", worst["f1"])
    if "precision" in m and "recall" in m and m["recall"] - m["precision"] >= PRECISION_RECALL_GAP:
        output, fp = _false_positives(facts)
        if output:
            advice.recommend("E2", "medium", "data",
                             f"Add 'incorrect' feedback examples for the over-predicted output '{output}' "
                             f"({fp} false positives)",
                             f"narrows the precision/recall gap ({m['precision']:.2f} vs {m['recall']:.2f})",
                             "precision_recall_gap", m["recall"] - m["precision"])
    if "consistency" in m:
        if m["consistency"] >= 0.95:
            advice.strengths.append(f"Stable under meaning-preserving perturbations ({m['consistency']:.2f})")
        elif m["consistency"] < CONSISTENCY_TARGET:
            kind = min(facts.consistency_by_kind, key=facts.consistency_by_kind.get) if facts.consistency_by_kind else "typo"
            advice.weaknesses.append(f"Predictions change under {kind} perturbations "
                                     f"(agreement {facts.consistency_by_kind.get(kind, m['consistency']):.2f})")
            advice.recommend("E3", "medium", "data", f"Augment the training data with {kind.replace('_', '-')} "
                             "variants of existing examples",
                             f"raises consistency (now {m['consistency']:.2f}) toward {CONSISTENCY_TARGET}",
                             "consistency", m["consistency"])
    if "ece" in m:
        if m["ece"] <= 0.05:
            advice.strengths.append(f"Well calibrated confidence (ECE {m['ece']:.3f})")
        elif m["ece"] > ECE_LIMIT:
            direction = "over" if m.get("mean_confidence", 0) > m.get("accuracy", 0) else "under"
            advice.weaknesses.append(f"{direction.capitalize()}confident predictions (ECE {m['ece']:.3f})")
            advice.recommend("E4", "low", "model", f"Do not gate actions on raw probabilities: the model is "
                             f"{direction}confident; retrain with early stopping on more validation data",
                             f"lowers ECE (now {m['ece']:.3f}) below {ECE_LIMIT}", "ece", m["ece"])
    if "latency_p95_ms" in m and m["latency_p95_ms"] > LATENCY_P95_LIMIT_MS:
        advice.recommend("E5", "low", "deployment", "Use smaller hiddenSizes or a smaller featurizer dim",
                         f"lowers p95 latency (now {m['latency_p95_ms']:.1f} ms)", "latency_p95_ms",
                         m["latency_p95_ms"])
    if m.get("confident_error_rate", 0) > CONFIDENT_ERROR_LIMIT:
        advice.recommend("E6", "medium", "model", "Route answers below 0.8 confidence to review: "
                         f"{m['confident_error_rate']:.1%} of answers are confidently wrong",
                         "fewer confidently wrong answers acted on", "confident_error_rate",
                         m["confident_error_rate"])
    if facts.test_set_source == "job:train":
        advice.weaknesses.append("Evaluated on the training examples (the job had no held-out split, or its model "
                                 "was refit on it)")
        advice.recommend("E7", "high", "evaluation", "Train with validationSplit > 0 (and refit off) or evaluate on test_data: "
                         "these numbers come from examples the model was trained on",
                         "honest estimates of accuracy on new inputs", "test_set_source", 0.0)
    if facts.example_count < SMALL_TEST_SET:
        advice.recommend("E8", "low", "evaluation", f"Evaluate on more examples: {facts.example_count} test "
                         "examples resolve accuracy only to about "
                         f"+/-{1.96 * (0.25 / max(facts.example_count, 1)) ** 0.5:.2f}",
                         "narrower confidence intervals", "example_count", facts.example_count)
    comp = facts.comparison
    if comp and comp.get("available") and comp.get("accuracy_test"):
        test = comp["accuracy_test"]
        if test.get("significant") and test.get("difference", 0) < 0:
            advice.weaknesses.append(f"Significantly less accurate than baseline {comp['baseline_version_id']}")
            advice.recommend("E9", "high", "deployment", f"Keep the baseline {comp['baseline_version_id']} "
                             f"active: accuracy {test['difference']:+.3f} (McNemar p={test['p_value']:.3g})",
                             "avoids a regression in production", "baseline_accuracy_p_value", test["p_value"])
        elif test.get("significant") and test.get("difference", 0) > 0:
            advice.strengths.append(f"Significantly more accurate than baseline {comp['baseline_version_id']} "
                                    f"({test['difference']:+.3f}, p={test['p_value']:.3g})")
    return advice


def training_advice(analysis: C.Analysis, job: dict[str, Any], advice: Advice | None = None) -> Advice:
    """Rules T1..T6 on the training-curve analysis; ``job`` carries the resolved config."""
    advice = advice or Advice()
    s = analysis.signals
    cfg = job.get("config", {})
    lr = cfg.get("learning_rate") or cfg.get("learningRate") or 0.001
    if analysis.convergence_status == C.CONVERGED:
        advice.strengths.append("Converged (training loss flat at the end)")
    elif analysis.convergence_status == C.DIVERGING:
        advice.weaknesses.append("Training loss rising at the end (diverging)")
        advice.recommend("T1", "high", "training", f"Lower learningRate (e.g. {lr / 3:.2g}) or add warmupSteps",
                         "a stable, falling loss", "loss_slope_per_epoch", s.get("loss_slope_per_epoch", 0.0))
    elif analysis.convergence_status == C.CONVERGING:
        advice.weaknesses.append("Still improving when training ended")
        advice.recommend("T4", "medium", "training", "Train more epochs: the training loss still falls "
                         f"{-s.get('loss_slope_per_epoch', 0) * 100:.1f}% per epoch",
                         "lower loss until the curve flattens", "loss_slope_per_epoch",
                         s.get("loss_slope_per_epoch", 0.0))
    else:
        advice.recommend("T5", "low", "training", "Lower learningRate or raise batchSize to smooth the loss curve"
                         if s.get("window_epochs", 0) >= C.MIN_EPOCHS else "Train for at least 3 epochs",
                         "a curve whose convergence can be judged", "loss_noise", s.get("loss_noise", 0.0))
    over = analysis.overfitting_risk
    if over in (C.NONE, C.LOW):
        advice.strengths.append("Small train/validation gap")
    elif over in (C.MEDIUM, C.HIGH):
        gap = s.get("accuracy_gap", 0.0)
        advice.weaknesses.append(f"Overfitting risk {over} (train/validation accuracy gap {gap:.3f})")
        advice.recommend("T2", "high" if over == C.HIGH else "medium", "training",
                         "Regularise: keep earlyStopping on, raise dropout (e.g. 0.3) or weightDecay, "
                         "or add training examples",
                         f"closes part of the {gap:.3f} train/validation accuracy gap", "accuracy_gap", gap)
    under = analysis.underfitting_risk
    if under in (C.MEDIUM, C.HIGH):
        acc = s.get("train_accuracy", 0.0)
        advice.weaknesses.append(f"Underfitting risk {under} (train accuracy {acc:.3f})")
        majority = s.get("majority_baseline_accuracy")
        if majority is not None and s.get("validation_accuracy", 1.0) < majority + 0.05:
            advice.recommend("T3", "high", "data", "Check the labels and inputs: validation accuracy "
                             f"{s.get('validation_accuracy', 0):.3f} barely beats always answering the most "
                             f"frequent output ({majority:.3f})", "a model that learns the task",
                             "validation_accuracy", s.get("validation_accuracy", 0.0))
        else:
            advice.recommend("T3", "high" if under == C.HIGH else "medium", "model",
                             "Increase capacity or training: more epochs, larger hiddenSizes, or a higher "
                             "learningRate", f"raises train accuracy (now {acc:.3f})", "train_accuracy", acc)
    eff = analysis.training_efficiency
    if analysis.epochs_analyzed < C.MIN_EPOCHS:
        pass  # too short a curve to call the training efficient or not
    elif eff >= 75:
        advice.strengths.append(f"Efficient training (efficiency {eff:.0f}/100)")
    elif eff < 40:
        advice.weaknesses.append(f"Inefficient training (efficiency {eff:.0f}/100)")
    if eff < 50 and s.get("utilisation", 1.0) < 0.6:
        advice.recommend("T6", "low", "training", f"Reduce epochs or patience: the kept weights came from epoch "
                         f"{s.get('best_epoch', 0):.0f} of {s.get('epochs_run', analysis.epochs_analyzed):.0f}",
                         "the same model for less compute", "training_efficiency", eff)
    return advice


def summary_sentence(score: float, letter: str, metrics: dict[str, float], analysis: C.Analysis) -> str:
    parts = [f"Overall {score:.0f}/100 (grade {letter})"]
    if "accuracy" in metrics:
        parts.append(f"accuracy {metrics['accuracy']:.3f}")
    if "f1" in metrics:
        parts.append(f"macro F1 {metrics['f1']:.3f}")
    parts.append(f"training {analysis.convergence_status.replace('_', ' ')}")
    parts.append(f"overfitting risk {analysis.overfitting_risk}, underfitting risk {analysis.underfitting_risk}")
    return "; ".join(parts) + "."
