"""Reading a job's training curves: convergence, over/underfitting, efficiency.

Input: the per-epoch points TrainingService stores (``loss`` and ``accuracy`` are the running
training values of the epoch, ``validation_loss`` / ``validation_accuracy`` the held-out ones,
``learning_rate``) and the job's final metrics (``best_epoch``, ``epochs_run``,
``stopped_early``, ``majority_baseline_accuracy``, final ``accuracy``/``validation_accuracy``
of the returned weights). The rules, with their thresholds as the constants below:

Convergence (training loss; the optimiser's view — a rising *validation* loss is overfitting):
  window = the last max(3, ceil(25% of epochs)) epochs; slope = least-squares slope of the loss
  over the window divided by max(mean loss of the window, 0.05) (relative change per epoch);
  noise = residual std / the same denominator.
  1. fewer than 3 epochs                           -> not_converged
  2. slope > +2%/epoch                             -> diverging
  3. early stopping ended the job, or |slope| <= 1%/epoch and noise <= 5%   -> converged
  4. slope < -1%/epoch                             -> converging
  5. otherwise (slowly rising or noisy)            -> not_converged

Overfitting (needs a validation curve, else unknown):
  accuracy_gap = final train accuracy - final validation accuracy (of the returned weights); it
  counts only when it exceeds the 95% sampling margin of the validation accuracy,
  1.96 * sqrt(p (1 - p) / n_validation) (a gap a small validation set produces by chance is no
  evidence), reported as accuracy_gap_margin
  validation_loss_rise = (last validation loss - min validation loss) / min validation loss
  high   if accuracy_gap >= 0.15 or validation_loss_rise >= 0.20
  medium if accuracy_gap >= 0.07 or validation_loss_rise >= 0.10
         or (validation loss slope > +1%/epoch while the training-loss slope < 0)
  low    if accuracy_gap >= 0.03 or validation_loss_rise >= 0.03
  none   otherwise

Underfitting (final training accuracy; and validation accuracy vs always answering the most
frequent output, ``majority_baseline_accuracy``):
  high   if train accuracy < 0.60 or validation accuracy < majority baseline + 0.05
  medium if train accuracy < 0.80
  low    if train accuracy < 0.90
  none   otherwise

Training efficiency 0..100 = 100 * (0.5 * speed + 0.3 * utilisation + 0.2 * stability):
  speed       = 1 - (e90 - 1) / epochs, e90 = first epoch whose loss achieved 90% of the total
                loss reduction (first epoch loss - minimum loss); 0 when the loss never fell
                (a single epoch included)
  utilisation = best_epoch / epochs (epochs after the kept weights were wasted compute)
  stability   = 1 - share of epoch-to-epoch training-loss increases
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

DIVERGING_SLOPE = 0.02
FLAT_SLOPE = 0.01
NOISE_LIMIT = 0.05
LOSS_FLOOR = 0.05
MIN_EPOCHS = 3

CONVERGED, CONVERGING, DIVERGING, NOT_CONVERGED = "converged", "converging", "diverging", "not_converged"
NONE, LOW, MEDIUM, HIGH, UNKNOWN = "none", "low", "medium", "high", "unknown"
RISK_ORDER = {NONE: 0, LOW: 1, MEDIUM: 2, HIGH: 3, UNKNOWN: 1}


@dataclass
class Curves:
    """Per-epoch series, epochs ascending; the last stored value of an epoch wins."""

    epochs: list[int]
    series: dict[str, list[float | None]]

    def get(self, name: str) -> list[float]:
        return [v for v in self.series.get(name, []) if v is not None]

    def __len__(self) -> int:
        return len(self.epochs)


def curves_from_points(points: Iterable[tuple[str, int, float]]) -> Curves:
    by_epoch: dict[int, dict[str, float]] = {}
    for name, epoch, value in points:
        if epoch and epoch > 0 and value is not None and math.isfinite(value):
            by_epoch.setdefault(int(epoch), {})[name] = float(value)
    epochs = sorted(by_epoch)
    names = sorted({n for values in by_epoch.values() for n in values})
    return Curves(epochs, {n: [by_epoch[e].get(n) for e in epochs] for n in names})


@dataclass
class Analysis:
    convergence_status: str
    overfitting_risk: str
    underfitting_risk: str
    training_efficiency: float
    signals: dict[str, float] = field(default_factory=dict)
    explanations: list[str] = field(default_factory=list)
    epochs_analyzed: int = 0
    monitored_curve: str = "loss"


def _slope(values: list[float]) -> tuple[float, float]:
    """(relative slope per epoch, relative residual noise) of a least-squares line."""
    y = np.array(values, dtype=float)
    x = np.arange(len(y), dtype=float)
    denom = max(float(y.mean()), LOSS_FLOOR)
    if len(y) < 2:
        return 0.0, 0.0
    a, b = np.polyfit(x, y, 1)
    residual = y - (a * x + b)
    return float(a / denom), float(residual.std() / denom)


def window_size(n: int) -> int:
    return min(n, max(MIN_EPOCHS, math.ceil(0.25 * n)))


def convergence(loss: list[float], stopped_early: bool) -> tuple[str, dict[str, float], str]:
    n = len(loss)
    if n < MIN_EPOCHS:
        return NOT_CONVERGED, {"window_epochs": float(n)}, f"only {n} epoch(s) of loss: too few to judge (rule C1)"
    w = window_size(n)
    slope, noise = _slope(loss[-w:])
    signals = {"loss_slope_per_epoch": slope, "loss_noise": noise, "window_epochs": float(w)}
    pct = f"{slope * 100:+.1f}%/epoch over the last {w} epochs"
    if slope > DIVERGING_SLOPE:
        return DIVERGING, signals, f"training loss rises {pct} (rule C2: > +{DIVERGING_SLOPE:.0%})"
    if stopped_early:
        return CONVERGED, signals, f"early stopping ended the job; training loss {pct} (rule C3)"
    if abs(slope) <= FLAT_SLOPE and noise <= NOISE_LIMIT:
        return CONVERGED, signals, f"training loss flat: {pct}, noise {noise:.1%} (rule C3)"
    if slope < -FLAT_SLOPE:
        return CONVERGING, signals, f"training loss still falls {pct} (rule C4)"
    return NOT_CONVERGED, signals, f"training loss neither flat nor falling: {pct}, noise {noise:.1%} (rule C5)"


def overfitting(curves: Curves, final: Mapping[str, float], loss_slope: float | None) -> tuple[str, dict[str, float], str]:
    val_loss = curves.get("validation_loss")
    train_acc = final.get("accuracy")
    val_acc = final.get("validation_accuracy")
    if not val_loss and val_acc is None:
        return UNKNOWN, {}, "no validation curve: overfitting cannot be judged (rule O0)"
    signals: dict[str, float] = {}
    gap = None
    if train_acc is not None and val_acc is not None:
        gap = float(train_acc - val_acc)
        signals["accuracy_gap"] = gap
    if final.get("loss") is not None and final.get("validation_loss") is not None:
        signals["loss_gap"] = float(final["validation_loss"] - final["loss"])
    rise = 0.0
    val_slope = 0.0
    if val_loss:
        low = min(val_loss)
        rise = (val_loss[-1] - low) / low if low > 0 else 0.0
        val_slope, _ = _slope(val_loss[-window_size(len(val_loss)):])
        signals["validation_loss_rise"] = rise
        signals["validation_loss_slope"] = val_slope
    g = gap if gap is not None else 0.0
    n_val = final.get("validation_examples")
    if gap is not None and val_acc is not None and n_val:
        margin = 1.96 * math.sqrt(max(val_acc * (1 - val_acc), 0.0) / n_val)
        signals["accuracy_gap_margin"] = margin
        if g <= margin:
            g = 0.0  # within the validation set's sampling noise
    rising_while_training_falls = val_slope > FLAT_SLOPE and (loss_slope or 0.0) < 0
    detail = f"accuracy gap {g:.3f}, validation loss {rise:+.1%} above its minimum, slope {val_slope:+.1%}/epoch"
    if g >= 0.15 or rise >= 0.20:
        return HIGH, signals, f"{detail} (rule O3)"
    if g >= 0.07 or rise >= 0.10 or rising_while_training_falls:
        return MEDIUM, signals, f"{detail} (rule O2)"
    if g >= 0.03 or rise >= 0.03:
        return LOW, signals, f"{detail} (rule O1)"
    return NONE, signals, f"{detail} (rule O-none)"


def underfitting(final: Mapping[str, float]) -> tuple[str, dict[str, float], str]:
    train_acc = final.get("accuracy")
    val_acc = final.get("validation_accuracy")
    majority = final.get("majority_baseline_accuracy")
    if train_acc is None:
        return UNKNOWN, {}, "no training accuracy recorded (rule U0)"
    signals = {"train_accuracy": float(train_acc)}
    if val_acc is not None:
        signals["validation_accuracy"] = float(val_acc)
    if majority is not None:
        signals["majority_baseline_accuracy"] = float(majority)
    near_majority = val_acc is not None and majority is not None and val_acc < majority + 0.05
    detail = f"train accuracy {train_acc:.3f}" + (
        f", validation {val_acc:.3f} vs majority baseline {majority:.3f}" if val_acc is not None and majority is not None else "")
    if train_acc < 0.60 or near_majority:
        return HIGH, signals, f"{detail} (rule U3)"
    if train_acc < 0.80:
        return MEDIUM, signals, f"{detail} (rule U2)"
    if train_acc < 0.90:
        return LOW, signals, f"{detail} (rule U1)"
    return NONE, signals, f"{detail} (rule U-none)"


def efficiency(loss: list[float], best_epoch: float | None) -> tuple[float, dict[str, float]]:
    n = len(loss)
    if n == 0:
        return 0.0, {}
    reduction = loss[0] - min(loss)
    if reduction > 0:
        target = loss[0] - 0.9 * reduction
        e90 = next(i + 1 for i, v in enumerate(loss) if v <= target)
        speed = 1.0 - (e90 - 1) / n
    else:
        e90, speed = n, 0.0
    best = best_epoch if best_epoch and best_epoch > 0 else n
    utilisation = min(1.0, float(best) / n)
    increases = sum(1 for a, b in zip(loss, loss[1:]) if b > a)
    stability = 1.0 - increases / (n - 1) if n > 1 else 1.0
    score = 100.0 * (0.5 * speed + 0.3 * utilisation + 0.2 * stability)
    return round(score, 1), {"epochs_to_90pct": float(e90), "speed": speed, "utilisation": utilisation,
                             "stability": stability}


def analyze(curves: Curves, final: Mapping[str, float]) -> Analysis:
    """Apply the documented rules to a job's curves and final metrics."""
    loss = curves.get("loss")
    stopped_early = bool(final.get("stopped_early"))
    status, conv_signals, conv_text = convergence(loss, stopped_early)
    over, over_signals, over_text = overfitting(curves, final, conv_signals.get("loss_slope_per_epoch"))
    under, under_signals, under_text = underfitting(final)
    eff, eff_signals = efficiency(loss, final.get("best_epoch"))
    signals = {**conv_signals, **over_signals, **under_signals, **eff_signals}
    for key in ("best_epoch", "epochs_run"):
        if final.get(key) is not None:
            signals[key] = float(final[key])
    return Analysis(status, over, under, eff, signals,
                    [f"convergence {status}: {conv_text}", f"overfitting risk {over}: {over_text}",
                     f"underfitting risk {under}: {under_text}",
                     f"training efficiency {eff:.0f}: speed {eff_signals.get('speed', 0):.2f}, utilisation "
                     f"{eff_signals.get('utilisation', 0):.2f}, stability {eff_signals.get('stability', 0):.2f}"],
                    epochs_analyzed=len(curves), monitored_curve="loss")


def convergence_speed(loss: list[float]) -> float | None:
    """Epochs to reach 90% of the total training-loss reduction (lower is faster)."""
    if not loss:
        return None
    _, signals = efficiency(loss, None)
    return signals.get("epochs_to_90pct")


def loss_stability(loss: list[float]) -> float | None:
    """1 - share of epoch-to-epoch increases of the training loss (1 = monotone)."""
    if len(loss) < 2:
        return None
    return 1.0 - sum(1 for a, b in zip(loss, loss[1:]) if b > a) / (len(loss) - 1)
