"""Trainer and serving speed figures, each next to a baseline measured in the same run.

Prints: featurizer texts/s; supervised training examples/s; ONNX Runtime vs NumPy inference
per batch (ratio); single-input ORT latency p50/p95. Run with `make bench`.
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.common.featurizer import HashingFeaturizer  # noqa: E402
from services.common.onnx_model import OnnxModel  # noqa: E402
from services.training.trainer.onnx_export import export_onnx  # noqa: E402
from services.training.trainer.supervised_config import SupervisedConfig  # noqa: E402
from services.training.trainer.supervised_trainer import SupervisedTrainer  # noqa: E402
from tests.intents import make_examples  # noqa: E402


def timed(fn, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    data = make_examples(500, seed=1)
    texts = [e["input"] for e in data]
    cold = timed(lambda: HashingFeaturizer().transform(texts), repeat=3)
    print(f"featurizer: {len(texts) / cold:,.0f} texts/s ({len(texts)} texts, fresh featurizer each run)")

    cfg = SupervisedConfig.from_dict({"epochs": 5, "earlyStopping": False, "seed": 0})
    t0 = time.perf_counter()
    result = SupervisedTrainer(cfg, data).train()
    elapsed = time.perf_counter() - t0
    print(f"supervised training: {len(data) * 5 * (1 - cfg.validation_split) / elapsed:,.0f} examples/s "
          f"(5 epochs, hidden {cfg.hidden_sizes}, dim {cfg.featurizer.dim})")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        export_onnx(result.model, str(path))
        ort_model = OnnxModel.from_path(str(path))
        batch = texts[:256]
        t_np = timed(lambda: result.model.predict_proba(batch))
        t_ort = timed(lambda: ort_model.predict_proba(batch))
        print(f"batch of 256: numpy {t_np * 1e3:.1f} ms, onnxruntime {t_ort * 1e3:.1f} ms, "
              f"ratio ort/numpy {t_ort / t_np:.2f}")
        samples = []
        for text in texts[:300]:
            t = time.perf_counter()
            ort_model.predict([text])
            samples.append(time.perf_counter() - t)
        samples.sort()
        print(f"single input ORT: p50 {statistics.median(samples) * 1e3:.2f} ms, "
              f"p95 {samples[int(0.95 * len(samples))] * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
