"""Model-agnostic training: the loop, its config, callbacks and safetensors checkpoints."""

from .checkpoint import load_checkpoint, load_model, save_checkpoint, save_model
from .loop import Callback, TrainConfig, TrainState, step_generator, train

__all__ = ["Callback", "TrainConfig", "TrainState", "load_checkpoint", "load_model", "save_checkpoint",
           "save_model", "step_generator", "train"]
