"""One entry point for every classifier/policy paradigm of the trainer core.

    parse_config(method, config) -> the paradigm's config model       (validate at StartJob)
    make_trainer(method, config, examples, validation_examples, callbacks, *,
                 base_model_onnx=None) -> trainer                    (.train_examples etc. before training)
    run_training(method, config, examples, validation_examples, callbacks, *,
                 base_model_onnx=None, resume_from=None) -> TrainResult

``method`` is one of ``METHODS`` (case-insensitive; "few-shot" = "few_shot"). ``config`` is the
user's config dict (camelCase or snake_case, caller keys such as "method" ignored) or an
already parsed config. ``examples`` are example dicts for supervised / few_shot / transfer and
feedback records (feedback.py) for reinforcement. ``base_model_onnx`` is the ONNX artifact of
the version to start from: required for transfer, optional for reinforcement (adapt an active
version), refused for the others.

Errors are ``InvalidArgument`` naming the user's field (``epochs``, ``validation.split``,
``examples[3].input``, ``feedback[2].rating``, ``method``, ``baseModel``); the service prefixes
them with its own path. ``train`` may raise ``TrainingDiverged`` (reason "diverged") or
``BudgetExceeded`` (reason "budget_exceeded", RESOURCE_EXHAUSTED) after writing a checkpoint.

The returned ``TrainResult`` has ``.model`` (exportable with ``export_onnx``), ``.metrics``,
``.stopped``, ``.history``, ``.checkpoints``, ``.method`` and the split the run really used as
``.train_examples`` / ``.validation_examples`` (also available on the trainer from
``make_trainer`` before ``train`` is called). Those are ``Example`` objects, or
``FeedbackRecord`` objects for reinforcement (both have ``.input`` and ``.to_dict()``; only
``Example`` has ``expected_output``).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from trainhouse.core.configs.training import CLASSIFIER_CONFIGS, SupervisedConfig
from trainhouse.core.errors import InvalidArgument
from trainhouse.core.trainer.cost import PriceModel
from trainhouse.core.trainer.few_shot_trainer import FewShotTrainer
from trainhouse.core.trainer.loop import LoopTrainer, TrainResult
from trainhouse.core.trainer.mlp import TrainedModel
from trainhouse.core.trainer.reinforcement_trainer import ReinforcementTrainer
from trainhouse.core.trainer.supervised_trainer import SupervisedTrainer
from trainhouse.core.trainer.transfer_trainer import TransferTrainer

CONFIGS = CLASSIFIER_CONFIGS
METHODS = tuple(CONFIGS)


def normalize_method(method: str) -> str:
    """The canonical method name, or ``InvalidArgument("method")`` listing the valid ones."""
    name = method.strip().lower().replace("-", "_") if isinstance(method, str) else None
    if name == "fewshot":
        name = "few_shot"
    if name not in CONFIGS:
        raise InvalidArgument("method", f"unknown training method {method!r}; expected one of {', '.join(METHODS)}")
    return name


def parse_config(method: str, config: Mapping[str, Any] | SupervisedConfig | None) -> SupervisedConfig:
    """Validate ``config`` for ``method`` (a transport's dict, see ``ConfigModel.from_dict``); the
    result is the paradigm's config model. A model that is already built is trusted as it is."""
    cls = CONFIGS[normalize_method(method)]
    if isinstance(config, SupervisedConfig):
        if type(config) is not cls:
            raise InvalidArgument("config", f"a {type(config).__name__} cannot configure {method!r} training")
        return config
    return cls.from_dict(config)


def load_base_model(data: bytes) -> TrainedModel:
    """The base version's model from its ONNX artifact (``InvalidArgument("baseModel")`` if unreadable)."""
    try:
        return TrainedModel.from_onnx_bytes(data)
    except ValueError as exc:
        raise InvalidArgument("baseModel", f"cannot read the base model's ONNX artifact: {exc}") from exc


def make_trainer(method: str, config: Mapping[str, Any] | SupervisedConfig | None,
                 examples: Sequence[Any], validation_examples: Sequence[Any] | None = None,
                 callbacks: Any = None, *, base_model_onnx: bytes | None = None,
                 base_model: TrainedModel | None = None, price_model: PriceModel | None = None) -> LoopTrainer:
    """Build the paradigm's trainer (data validated, split and featurized) without training."""
    name = normalize_method(method)
    cfg = parse_config(name, config)
    validation = list(validation_examples) if validation_examples else None
    if base_model is None and base_model_onnx is not None:
        base_model = load_base_model(base_model_onnx)
    if name == "transfer":
        if base_model is None:
            raise InvalidArgument("baseVersionId", "transfer learning needs a base model version "
                                                   "(the agent's active version or baseVersionId)")
        return TransferTrainer(cfg, base_model, examples, validation, callbacks,  # type: ignore[arg-type]
                               price_model=price_model)
    if name == "reinforcement":
        return ReinforcementTrainer(cfg, examples, validation, callbacks,  # type: ignore[arg-type]
                                    base_model=base_model, price_model=price_model)
    if base_model is not None:
        raise InvalidArgument("baseVersionId", f"{name} training starts from scratch; use method 'transfer' "
                                               "to continue from a base version")
    cls = FewShotTrainer if name == "few_shot" else SupervisedTrainer
    return cls(cfg, examples, validation, callbacks, price_model=price_model)  # type: ignore[arg-type]


def run_training(method: str, config: Mapping[str, Any] | SupervisedConfig | None, examples: Sequence[Any],
                 validation_examples: Sequence[Any] | None, callbacks: Any, *, base_model_onnx: bytes | None = None,
                 resume_from: str | None = None, price_model: PriceModel | None = None) -> TrainResult:
    """Validate, build and run one training job; see the module docstring."""
    trainer = make_trainer(method, config, examples, validation_examples, callbacks,
                           base_model_onnx=base_model_onnx, price_model=price_model)
    return trainer.train(resume_from=resume_from)
