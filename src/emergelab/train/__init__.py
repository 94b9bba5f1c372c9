"""Model-agnostic training: the loop, its config, callbacks and safetensors checkpoints.
Names load on first use (`emergelab.lazy`): `TrainConfig` does not import torch."""

from ..lazy import lazy_exports

_EXPORTS = {
    "TrainConfig": ".config",
    **dict.fromkeys(["Callback", "TrainState", "step_generator", "train"], ".loop"),
    **dict.fromkeys(["load_checkpoint", "load_model", "save_checkpoint", "save_model"], ".checkpoint"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
