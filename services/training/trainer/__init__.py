"""NumPy trainer core: featurized examples -> MLP -> ONNX. No transport code lives here."""
from services.training.trainer.checkpoint import TrainingState, load_checkpoint, save_checkpoint
from services.training.trainer.examples import (FEEDBACK_VALUES, PARTIAL_WEIGHT, Example, LabelMap, Targets,
                                                encode_targets, parse_examples)
from services.training.trainer.mlp import (MLP, TrainedModel, feedback_loss, loss_and_grads,
                                           numerical_gradient_check, softmax)
from services.training.trainer.onnx_export import build_onnx, export_onnx, export_onnx_bytes
from services.training.trainer.optimizers import SGD, Adam, AdamW, Optimizer, make_optimizer
from services.training.trainer.schedulers import LRScheduler, make_scheduler
from services.training.trainer.supervised_config import CurriculumStage, SupervisedConfig
from services.training.trainer.supervised_trainer import (CheckpointInfo, SupervisedTrainer, TrainerCallbacks,
                                                          TrainingDiverged, TrainResult, evaluate,
                                                          stratified_split)

__all__ = [
    "Adam", "AdamW", "CheckpointInfo", "CurriculumStage", "Example", "FEEDBACK_VALUES", "LRScheduler", "LabelMap",
    "MLP", "Optimizer", "PARTIAL_WEIGHT", "SGD", "SupervisedConfig", "SupervisedTrainer", "Targets",
    "TrainResult", "TrainedModel", "TrainerCallbacks", "TrainingDiverged", "TrainingState", "build_onnx",
    "encode_targets", "evaluate", "export_onnx", "export_onnx_bytes", "feedback_loss", "load_checkpoint",
    "loss_and_grads", "make_optimizer", "make_scheduler", "numerical_gradient_check", "parse_examples",
    "save_checkpoint", "softmax", "stratified_split",
]
