"""Transfer learning: continue from a trained model, keep its catalog, add new outputs.

``TransferTrainer(config, base_model, train, validation, callbacks)``:

* the catalog is the base model's labels in their order (their columns never move), followed
  by the outputs first seen in the new examples;
* weights start as the base model's; each **new** output's column of the output layer starts
  at its class prototype in the representation that layer reads (the last hidden layer's
  activations, or the hashed features for a linear model): ``w_c = a * p_c`` where ``p_c`` is
  the unit mean of its examples' unit representations and ``a`` the mean norm of the existing
  columns, with bias = the mean existing bias;
* then the output layer alone is fitted to the new data on the base model's (fixed)
  representation — a convex multinomial logistic regression with an L2 pull
  (``HEAD_L2``) toward that initialisation, solved deterministically with L-BFGS
  (``HEAD_ITERATIONS`` iterations) — before the whole network is fine-tuned ("linear probing
  then fine-tuning", Kumar et al. 2022: fitting the head first keeps the base features from
  being distorted by a random head's gradients). The new outputs so start as strong as the
  old ones, and fine-tuning needs few epochs;
* featurizer and hidden sizes are the base model's (a different value is refused:
  ``InvalidArgument`` naming ``featurizer`` / ``hiddenSizes``);
* ``freezeHidden: true`` trains only the output layer.

Include examples of the old outputs that must keep working: an output absent from the new
data gets only "not this one" gradient from the softmax and fades (the trainer logs a warning
naming such outputs).

The base model comes from a previous ``TrainResult.model`` or from the ONNX artifact the
registry serves: ``TrainedModel.from_onnx_bytes(data)`` / ``TrainedModel.from_onnx_model(m)``.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from trainhouse.core.configs.training import TransferConfig
from trainhouse.core.errors import InvalidArgument
from trainhouse.core.trainer.cost import PriceModel
from trainhouse.core.trainer.examples import Example, LabelMap
from trainhouse.core.trainer.loop import TrainerCallbacks
from trainhouse.core.trainer.mlp import MLP, TrainedModel
from trainhouse.core.trainer.prototypes import prototypes, representations
from trainhouse.core.trainer.supervised_trainer import SupervisedTrainer


HEAD_L2 = 1e-3
HEAD_ITERATIONS = 100


def fit_head(mlp: MLP, X: Any, y: np.ndarray, coef: np.ndarray, negative: np.ndarray) -> None:
    """Fit the output layer of ``mlp`` in place on the fixed representation of ``X`` (see the
    module docstring); the feedback loss (incl. "incorrect" examples) is what is minimised."""
    from scipy.optimize import minimize

    from trainhouse.core.trainer.mlp import feedback_loss
    from trainhouse.core.trainer.sparse_ops import dense, sparse_weight_grad

    layers = len(mlp.params) - 1
    H = representations(mlp, X, layers).astype(np.float32) if layers else X
    W0, b0 = (a.astype(np.float64) for a in mlp.params[-1])
    shape = W0.shape

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        W = theta[:W0.size].reshape(shape)
        b = theta[W0.size:]
        head = MLP([(W.astype(np.float32), b.astype(np.float32))])
        logits, _ = head.forward(H)
        loss, dlogits, _ = feedback_loss(logits.astype(np.float64), y, coef, negative)
        dW = dense(sparse_weight_grad(H, dlogits)) if not layers else H.T.astype(np.float64) @ dlogits
        loss += 0.5 * HEAD_L2 * float(np.sum((W - W0) ** 2))
        dW = dW + HEAD_L2 * (W - W0)
        return loss, np.concatenate([dW.ravel(), dlogits.sum(axis=0)])

    theta0 = np.concatenate([W0.ravel(), b0])
    res = minimize(objective, theta0, jac=True, method="L-BFGS-B", options={"maxiter": HEAD_ITERATIONS})
    theta = res.x if np.all(np.isfinite(res.x)) else theta0
    mlp.params[-1] = (theta[:W0.size].reshape(shape).astype(np.float32), theta[W0.size:].astype(np.float32))


def check_base_compatible(config: Any, base: TrainedModel) -> None:
    """Refuse a featurizer or hidden-size change against the base model (names the field)."""
    if config.featurizer is not None and config.featurizer != base.featurizer_config:
        raise InvalidArgument("featurizer", "transfer keeps the base model's featurizer "
                                            f"{base.featurizer_config.to_dict()}; omit it or pass the same settings")
    if config.hidden_sizes is not None and tuple(config.hidden_sizes) != tuple(base.hidden_sizes):
        raise InvalidArgument("hiddenSizes", f"transfer keeps the base model's hidden sizes "
                                             f"{list(base.hidden_sizes)}; omit it or pass the same sizes")


def extend_from_base(base: TrainedModel, label_map: LabelMap, X: Any, y: np.ndarray,
                     weights: np.ndarray) -> MLP:
    """The base model's MLP with one output column per label of ``label_map`` beyond the base
    catalog, initialised from prototypes of the (positive) examples ``X``/``y``/``weights``."""
    mlp = MLP([(np.array(W, dtype=np.float32), np.array(b, dtype=np.float32)) for W, b in base.params])
    n_old, n_new = len(base.label_map), len(label_map)
    if n_new == n_old:
        return mlp
    W, b = mlp.params[-1]
    layers = len(mlp.params) - 1
    reps = representations(mlp, X, layers) if layers else X
    P, present = prototypes(reps, y, weights, n_new)
    col_norm = float(np.linalg.norm(W, axis=0).mean()) if n_old else 1.0
    bias = float(b.mean()) if n_old else 0.0
    W_new = np.zeros((W.shape[0], n_new - n_old), dtype=np.float32)
    for j, c in enumerate(range(n_old, n_new)):
        if present[c]:
            W_new[:, j] = col_norm * P[c]
    mlp.params[-1] = (np.concatenate([W, W_new], axis=1), np.concatenate([b, np.full(n_new - n_old, bias, np.float32)]))
    return mlp


class TransferTrainer(SupervisedTrainer):
    paradigm = "transfer"

    def __init__(self, config: TransferConfig, base_model: TrainedModel, train_examples: Sequence[Example | dict],
                 validation_examples: Sequence[Example | dict] | None = None,
                 callbacks: TrainerCallbacks | Any = None, *, price_model: PriceModel | None = None):
        if not isinstance(base_model, TrainedModel):
            raise InvalidArgument("baseModel", "a trained base model is required for transfer learning")
        check_base_compatible(config, base_model)
        self.base_model = base_model
        super().__init__(config, train_examples, validation_examples, callbacks, price_model=price_model)
        self.config: TransferConfig = config

    @property
    def featurizer_config(self) -> Any:
        return self.base_model.featurizer_config

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        return tuple(self.base_model.hidden_sizes)

    def _catalog(self, train: list[Example], val: list[Example]) -> LabelMap:
        lm = LabelMap(self.base_model.label_map.to_list())
        for examples in (train, val):
            lm.extend(e.expected_output for e in examples)
        return lm

    def _init_mlp(self) -> MLP:
        rows = np.flatnonzero(~self.t_train.negative)
        mlp = extend_from_base(self.base_model, self.label_map, self.x_train.take(rows), self.t_train.y[rows],
                               self.t_train.coef[rows])
        t = self.t_train
        fit_head(mlp, self.x_train, t.y, t.coef, t.negative)
        return mlp

    def _first_trainable_layer(self, mlp: MLP) -> int:
        return len(mlp.params) - 1 if self.config.freeze_hidden else 0

    def _model_metadata(self) -> dict[str, Any]:
        n_old = len(self.base_model.label_map)
        return {"base_model": {k: self.base_model.metadata.get(k) for k in ("paradigm", "version_id")
                               if self.base_model.metadata.get(k) is not None},
                "base_outputs": n_old, "new_outputs": self.label_map.to_list()[n_old:],
                "freeze_hidden": self.config.freeze_hidden}

    def _diagnostics(self) -> None:
        super()._diagnostics()
        n_old = len(self.base_model.label_map)
        new = self.label_map.to_list()[n_old:]
        self._log(f"transfer from a model with {n_old} outputs; {len(new)} new outputs"
                  + (f": {new[:10]}" if new else "") + ("; hidden layers frozen" if self.config.freeze_hidden else ""))
        seen = {e.expected_output for e in self.train_examples if e.feedback != "incorrect"}
        absent = [label for label in self.base_model.labels if label not in seen]
        if absent:
            self._log(f"{len(absent)} outputs of the base model have no example in the new data and will fade: "
                      f"{absent[:10]}; add examples of them to keep them", "warning")
