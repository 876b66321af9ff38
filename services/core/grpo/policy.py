"""The GRPO policy: an MLP with a softmax over the actions (the catalog's tools, ``finish`` last).

Its input for one step is ``[query features (D) | state features (2T+1)]``: the query text through
the hashing featurizer (the same one classifiers use), then which of the T tools have succeeded
so far, which tool was called last (one-hot) and whether that call failed
(``environment.Episode.state_vector``).

Inside training the first layer is computed in two parts: the query part once per *query*
(a sparse CSR x dense product, never a dense (steps, D) matrix: a batch can hold 200k steps),
the small state part per step. ``features`` builds the full dense input, which is what the ONNX
graph takes; ``test_onnx`` checks both paths agree.

The output layer starts at 1% of its He-initialised scale, so the untrained policy is close to
uniform over the actions: maximal exploration, and a reference policy that does not favour any
tool for arbitrary reasons.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from trainhouse.core.featurizer import FeaturizerConfig, HashingFeaturizer
from trainhouse.core.grpo.environment import Episode, state_dim
from trainhouse.core.grpo.tools import FINISH
from trainhouse.core.trainer.mlp import MLP, log_softmax

OUTPUT_INIT_SCALE = 0.01


def encode_texts(featurizer: HashingFeaturizer, texts: Sequence[str]) -> sp.csr_matrix:
    """Hashed features of ``texts`` as a (len(texts), dim) CSR matrix, float32."""
    rows = featurizer.transform_sparse(list(texts))
    return sp.csr_matrix((rows.values, rows.indices, rows.indptr), shape=(len(rows), rows.dim))


class ToolPolicy:
    def __init__(self, mlp: MLP, actions: Sequence[str], featurizer_config: FeaturizerConfig,
                 metadata: dict[str, Any] | None = None):
        self.mlp = mlp
        self.actions = list(actions)
        if not self.actions or self.actions[-1] != FINISH:
            raise ValueError("the last action must be finish")
        self.featurizer_config = featurizer_config
        self.featurizer = HashingFeaturizer(featurizer_config)
        self.query_dim = featurizer_config.dim
        self.n_tools = len(self.actions) - 1
        self.metadata: dict[str, Any] = dict(metadata or {})
        if mlp.input_dim != self.input_dim or mlp.n_outputs != len(self.actions):
            raise ValueError(f"MLP shape ({mlp.input_dim} -> {mlp.n_outputs}) does not fit "
                             f"{self.input_dim} features -> {len(self.actions)} actions")

    @classmethod
    def init(cls, actions: Sequence[str], featurizer_config: FeaturizerConfig, hidden_sizes: Sequence[int],
             rng: np.random.Generator, metadata: dict[str, Any] | None = None) -> "ToolPolicy":
        n_tools = len(actions) - 1
        mlp = MLP.init(featurizer_config.dim + state_dim(n_tools), hidden_sizes, len(actions), rng)
        W, _ = mlp.params[-1]
        W *= np.float32(OUTPUT_INIT_SCALE)
        return cls(mlp, actions, featurizer_config, metadata)

    @property
    def input_dim(self) -> int:
        return self.query_dim + state_dim(self.n_tools)

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        return self.mlp.hidden_sizes

    def copy(self) -> "ToolPolicy":
        return ToolPolicy(self.mlp.copy(), self.actions, self.featurizer_config, self.metadata)

    # -- inputs -------------------------------------------------------------------------------------
    def encode_queries(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Hashed query features as a CSR matrix (float32, rows of unit L2 norm)."""
        return encode_texts(self.featurizer, texts)

    def features(self, texts: Sequence[str], states: np.ndarray) -> np.ndarray:
        """Full dense inputs (the ONNX graph's ``features``): one row per (text, state vector)."""
        states = np.asarray(states, dtype=np.float32).reshape(len(texts), -1)
        q = self.encode_queries(texts).toarray().astype(np.float32, copy=False)
        return np.concatenate([q, states], axis=1)

    # -- split forward / backward -----------------------------------------------------------------
    def project_queries(self, Q: sp.csr_matrix) -> np.ndarray:
        """Query part of the first layer's pre-activation, (U, width of layer 1)."""
        W, _ = self.mlp.params[0]
        return np.asarray(Q.astype(W.dtype) @ W[:self.query_dim])

    def forward(self, Q: sp.csr_matrix, qidx: np.ndarray, S: np.ndarray,
                projected: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Logits for rows (query ``qidx[r]`` of ``Q``, state ``S[r]``) and the backward cache.

        ``projected`` (``project_queries(Q)``) may be passed when the weights have not changed
        since it was computed (rollouts reuse it for every step).
        """
        params = self.mlp.params
        W0, b0 = params[0]
        if projected is None:
            projected = self.project_queries(Q)
        z = projected[qidx] + S.astype(W0.dtype, copy=False) @ W0[self.query_dim:] + b0
        pre: list[np.ndarray] = []
        acts: list[Any] = [None]
        h = z
        for i in range(1, len(params)):
            pre.append(z)
            h = np.maximum(z, 0)
            acts.append(h)
            W, b = params[i]
            z = h @ W + b
        return z, {"Q": Q, "qidx": qidx, "S": S, "acts": acts, "pre": pre}

    def backward(self, cache: dict[str, Any], dlogits: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Gradients of every (W, b) given dLoss/dlogits; mirrors ``MLP.backward``."""
        params = self.mlp.params
        acts, pre = cache["acts"], cache["pre"]
        grads: list[tuple[np.ndarray, np.ndarray]] = []
        dz = dlogits
        for layer in range(len(params) - 1, 0, -1):
            W, _ = params[layer]
            grads.append((acts[layer].T @ dz, dz.sum(axis=0)))
            dz = (dz @ W.T) * (pre[layer - 1] > 0)
        # First layer: query rows scatter-added onto their query (a sparse one-hot product), then
        # through the query features; the state part is dense.
        W0, _ = params[0]
        Q, qidx, S = cache["Q"], cache["qidx"], cache["S"]
        n_rows = len(qidx)
        onehot = sp.csr_matrix((np.ones(n_rows, dtype=dz.dtype), (qidx, np.arange(n_rows))), shape=(Q.shape[0], n_rows))
        per_query = np.asarray(onehot @ dz)
        dWq = np.asarray(Q.T.astype(dz.dtype) @ per_query)
        dWs = S.astype(dz.dtype, copy=False).T @ dz
        grads.append((np.concatenate([dWq, dWs], axis=0).astype(W0.dtype, copy=False), dz.sum(axis=0)))
        grads.reverse()
        return grads

    # -- convenience ------------------------------------------------------------------------------
    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Action probabilities from full dense features (what the ONNX graph computes)."""
        return self.mlp.predict_proba(np.asarray(features, dtype=np.float32))

    def action_log_probs(self, Q: sp.csr_matrix, qidx: np.ndarray, S: np.ndarray,
                         projected: np.ndarray | None = None) -> np.ndarray:
        logits, _ = self.forward(Q, qidx, S, projected)
        return log_softmax(logits.astype(np.float64))

    def act(self, query: str, episode: Episode, greedy: bool = True,
            rng: np.random.Generator | None = None) -> str:
        """The next action for one episode (serving-style, one query at a time)."""
        logp = self.action_log_probs(self.encode_queries([query]), np.zeros(1, dtype=np.int64),
                                     episode.state_vector()[None, :])[0]
        if greedy or rng is None:
            return self.actions[int(np.argmax(logp))]
        return self.actions[int(rng.choice(len(self.actions), p=np.exp(logp)))]

    # -- state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"mlp": self.mlp.state_dict(), "actions": list(self.actions),
                "featurizer": self.featurizer_config.to_dict(), "metadata": dict(self.metadata)}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "ToolPolicy":
        return cls(MLP.from_state_dict(state["mlp"]), state["actions"], FeaturizerConfig.from_dict(state["featurizer"]),
                   state.get("metadata"))

    def export_onnx(self, path: str) -> None:
        from trainhouse.core.grpo.onnx_export import export_policy_onnx
        export_policy_onnx(self, path)

    def onnx_bytes(self) -> bytes:
        from trainhouse.core.grpo.onnx_export import policy_onnx_bytes
        return policy_onnx_bytes(self)
