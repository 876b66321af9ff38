"""An exported trainhouse model loaded into ONNX Runtime: what serving and evaluation use.

The ONNX file is self-contained: the label map and featurizer settings are read from its
metadata, so predictions depend on nothing but the file's bytes.
"""
from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np
import onnxruntime as ort

from trainhouse.core.abstention import abstains
from trainhouse.core.errors import InvalidArgument
from trainhouse.core.featurizer import FeaturizerConfig, HashingFeaturizer

# metadata_props keys (JSON values); the registry reads "labels" and "featurizer" on upload.
META_LABELS = "labels"
META_FEATURIZER = "featurizer"
META_HIDDEN = "hidden_sizes"
META_EXTRA = "training_metadata"
META_TEMPERATURE = "temperature"
META_THRESHOLD = "out_of_scope_threshold"
# Dense feature blocks fed to ONNX Runtime stay below this many floats (a wide featurizer would
# otherwise make a 256-row batch hundreds of MB).
_MAX_BLOCK_FLOATS = 1 << 23


class OnnxModel:
    def __init__(self, session: ort.InferenceSession):
        self.session = session
        meta = session.get_modelmeta().custom_metadata_map
        if META_LABELS not in meta or META_FEATURIZER not in meta:
            raise ValueError("not a trainhouse model: label map or featurizer metadata missing")
        self.labels: list[str] = json.loads(meta[META_LABELS])
        self.featurizer_config = FeaturizerConfig.from_dict(json.loads(meta[META_FEATURIZER]))
        self.hidden_sizes: tuple[int, ...] = tuple(json.loads(meta.get(META_HIDDEN, "[]")))
        self.metadata: dict[str, Any] = json.loads(meta.get(META_EXTRA, "{}"))
        # Calibration and abstention (calibration.py); versions exported before them: 1 and 0 (never).
        self.temperature = float(json.loads(meta.get(META_TEMPERATURE, "1.0")))
        self.out_of_scope_threshold = float(json.loads(meta.get(META_THRESHOLD, "0.0")))
        self.featurizer = HashingFeaturizer(self.featurizer_config)
        self._input = session.get_inputs()[0].name
        # A GRPO tool policy takes the query features plus an episode-state vector; served on a
        # text, it answers the first action of a fresh episode (an all-zero state).
        layout = json.loads(meta.get("policy_layout", "null"))
        self.state_dim: int = int(layout["state_dim"]) if layout else 0
        self.kind = "policy" if layout else "classifier"
        self.tools: list[str] = list(layout.get("tools") or []) if layout else []
        # Where the graph came from (bytes or a path), so the trainer can read the weights back
        # (``TrainedModel.from_onnx_model``) to fine-tune a served version; None for a bare session.
        self.source: bytes | str | None = None

    def onnx_bytes(self) -> bytes:
        """The serialized ONNX model this instance serves."""
        if isinstance(self.source, bytes):
            return self.source
        if isinstance(self.source, str):
            with open(self.source, "rb") as fh:
                return fh.read()
        raise ValueError("this OnnxModel was built from a session; its ONNX bytes are not available")

    @staticmethod
    def _options() -> ort.SessionOptions:
        # One intra-op thread: serving runs many small requests concurrently, and a single
        # thread per session gives stable latency (and identical numerics run to run).
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        return opts

    @classmethod
    def from_bytes(cls, data: bytes) -> "OnnxModel":
        model = cls(ort.InferenceSession(data, sess_options=cls._options(), providers=["CPUExecutionProvider"]))
        model.source = bytes(data)
        return model

    @classmethod
    def from_path(cls, path: str) -> "OnnxModel":
        model = cls(ort.InferenceSession(path, sess_options=cls._options(), providers=["CPUExecutionProvider"]))
        model.source = str(path)
        return model

    def predict_proba_features(self, features: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self._input: np.ascontiguousarray(features, dtype=np.float32)})[0]

    def episode_state(self, steps: Sequence[tuple[str, bool]], field: str = "steps") -> np.ndarray:
        """A policy's episode-state vector after ``steps`` ((tool, succeeded), oldest first): what
        the GRPO environment feeds the policy (``environment.Episode.state_vector``), i.e.
        [tool called successfully (T) | last tool one-hot (T) | last call failed (1)]."""
        if self.kind != "policy":
            raise InvalidArgument(field, "applies to GRPO tool policies only; this version is a classifier")
        n = len(self.tools)
        index = {tool: i for i, tool in enumerate(self.tools)}
        state = np.zeros(self.state_dim, dtype=np.float32)
        for j, (tool, ok) in enumerate(steps):
            if tool not in index:
                ended = tool == self.labels[-1]
                raise InvalidArgument(f"{field}[{j}].tool", "the episode already finished" if ended else
                                      f"unknown tool '{tool}'; the policy's tools: {', '.join(self.tools)}")
            if ok:
                state[index[tool]] = 1.0
        if steps:
            tool, ok = steps[-1]
            state[n + index[tool]] = 1.0
            state[-1] = 0.0 if ok else 1.0
        return state

    def predict_proba(self, texts: Sequence[str], batch_size: int = 256, states: np.ndarray | None = None
                      ) -> np.ndarray:
        """Probabilities over ``labels``, shape (len(texts), len(labels)); featurized in batches
        so a large evaluation set never materialises one huge dense matrix. A policy takes one
        episode-state row per text (``states``; default: fresh episodes)."""
        rows = self.featurizer.transform_sparse(texts)
        out = np.zeros((len(rows), len(self.labels)), dtype=np.float32)
        batch_size = max(1, min(batch_size, _MAX_BLOCK_FLOATS // max(1, self.featurizer_config.dim)))
        for start in range(0, len(rows), batch_size):
            idx = np.arange(start, min(start + batch_size, len(rows)))
            dense = rows.to_dense(idx)
            if self.state_dim:
                state = (np.zeros((len(idx), self.state_dim), dtype=np.float32) if states is None
                         else np.asarray(states[idx], dtype=np.float32))
                dense = np.concatenate([dense, state], axis=1)
            out[idx] = self.predict_proba_features(dense)
        return out

    def out_of_scope(self, probs: np.ndarray) -> np.ndarray:
        """Which rows of ``predict_proba`` abstain (services/core/abstention.py): the top output is
        ``__out_of_scope__``, or the best catalogue probability is strictly below the threshold."""
        return abstains(probs, self.labels, self.out_of_scope_threshold)

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """Top output and its probability for each text."""
        probs = self.predict_proba(texts)
        best = probs.argmax(axis=1)
        return [(self.labels[int(j)], float(probs[i, j])) for i, j in enumerate(best)]
