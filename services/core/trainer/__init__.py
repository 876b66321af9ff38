"""NumPy trainer core: featurized examples -> MLP -> ONNX. No transport code lives here.

Entry point: ``dispatch.run_training(method, config, examples, validation_examples, callbacks,
base_model_onnx=..., resume_from=...)`` for "supervised", "few_shot", "transfer" and
"reinforcement" (``dispatch.parse_config`` validates a config up front). Modules:

* loop.py — the shared training loop (checkpoints, resume, early stopping, budget, divergence)
* supervised_* / few_shot_* / transfer_* / reinforcement_* — trainer per paradigm; their configs are
  in services/core/configs/training.py (pydantic models shared with the service edge and the gateway)
* mlp.py (model, losses), sparse_ops.py (hashed first layer), optimizers.py, schedulers.py
* prototypes.py (class prototypes), feedback.py (rated feedback records), cost.py (price, budget)
* checkpoint.py, onnx_export.py (export and ``load_trained_model``)
"""
from trainhouse.core.configs.training import (CurriculumStage, FewShotConfig, ReinforcementConfig, SupervisedConfig,
                                            TransferConfig)
from trainhouse.core.trainer.checkpoint import TrainingState, load_checkpoint, save_checkpoint
from trainhouse.core.trainer.examples import (FEEDBACK_VALUES, PARTIAL_WEIGHT, Example, LabelMap, Targets,
                                                encode_targets, parse_examples)
from trainhouse.core.trainer.mlp import (MLP, TrainedModel, feedback_loss, gradient_check, loss_and_grads,
                                           numerical_gradient_check, policy_gradient_loss, softmax)
from trainhouse.core.trainer.onnx_export import build_onnx, export_onnx, export_onnx_bytes, load_trained_model
from trainhouse.core.trainer.optimizers import SGD, Adam, AdamW, Optimizer, make_optimizer
from trainhouse.core.trainer.schedulers import LRScheduler, make_scheduler
from trainhouse.core.trainer.loop import (CheckpointInfo, LoopTrainer, TrainerCallbacks, TrainingDiverged,
                                            TrainResult, evaluate, stratified_split)
from trainhouse.core.trainer.supervised_trainer import SupervisedTrainer
from trainhouse.core.trainer.cost import Budget, BudgetExceeded, PriceModel
from trainhouse.core.trainer.dispatch import METHODS, make_trainer, parse_config, run_training
from trainhouse.core.trainer.feedback import FeedbackRecord, parse_feedback
from trainhouse.core.trainer.few_shot_trainer import FewShotTrainer
from trainhouse.core.trainer.reinforcement_trainer import ReinforcementTrainer
from trainhouse.core.trainer.transfer_trainer import TransferTrainer

__all__ = [
    "Adam", "AdamW", "CheckpointInfo", "CurriculumStage", "Example", "FEEDBACK_VALUES", "LRScheduler", "LabelMap",
    "MLP", "Optimizer", "PARTIAL_WEIGHT", "SGD", "SupervisedConfig", "SupervisedTrainer", "Targets",
    "TrainResult", "TrainedModel", "TrainerCallbacks", "TrainingDiverged", "TrainingState", "build_onnx",
    "encode_targets", "evaluate", "export_onnx", "export_onnx_bytes", "feedback_loss", "load_checkpoint",
    "loss_and_grads", "make_optimizer", "make_scheduler", "numerical_gradient_check", "parse_examples",
    "save_checkpoint", "softmax", "stratified_split", "Budget", "BudgetExceeded", "PriceModel", "METHODS",
    "make_trainer", "parse_config", "run_training", "FeedbackRecord", "parse_feedback", "FewShotConfig",
    "FewShotTrainer", "ReinforcementConfig", "ReinforcementTrainer", "TransferConfig", "TransferTrainer",
    "LoopTrainer", "gradient_check", "policy_gradient_loss", "load_trained_model",
]
