"""The config of the `inspect` experiment (`emergelab inspect`): one text through one model, explained. Every key
`emergelab config inspect` prints and `--set` takes. Torch-free, so `emergelab config` and `emergelab list` start
fast; `experiments/inspect.py` runs it."""

from __future__ import annotations

from dataclasses import dataclass

from ...config import at_least, in_interval, invalid
from ..base import RunSettings
from .schema import CHECKS, HEAD, under

ATTRIBUTION_METHODS = ("integrated_gradients", "saliency", "gradient_x_input")
HEAD_FUSIONS = ("mean", "max", "min")
PATCHING = ("auto", "exact", "attribution")
RANDOM = "random"  # the untrained control model, built in the run folder from the text (what the tiny run uses)


@dataclass
class InspectConfig(RunSettings):
    """`seed` draws the weights of `model=random`; nothing else here is random."""

    model: str = ""  # an alias (smollm2-135m, minilm), a local HF folder, a run id, or 'random' (untrained)
    text: str = ""  # the text explained; at most the model's context length in tokens
    target: str = ""  # the token whose logit is explained (one token, e.g. ' Paris'); '' = the model's prediction
    corrupt: str = ""  # a corrupted text of as many tokens: activation patching clean vs corrupted; '' = none
    top_k: int = 5  # logit lens: top tokens per layer and position
    lens_positions: int = 12  # logit lens: the last this-many positions get a column
    attribution: str = "integrated_gradients"  # integrated_gradients, saliency or gradient_x_input (Captum)
    n_steps: int = 32  # integrated gradients' integration steps
    internal_batch_size: int = 32  # the most embedding rows one attribution forward runs (bounds memory)
    head_fusion: str = "mean"  # attention rollout: how the heads of a layer are fused (mean, max, min)
    discard_ratio: float = 0.0  # attention rollout: the share of lowest fused weights set to 0 per layer
    patching: str = "auto"  # exact, attribution (Nanda 2023's estimate), or auto: exact up to `exact_cells` cells
    exact_cells: int = 4096  # auto patching: a grid with more cells (layers x positions) uses attribution patching
    page_cells: int = 8_000_000  # attention cells the report embeds (1 byte each): above, each query's top keys

    def validate(self) -> None:
        super().validate()
        if self.attribution not in ATTRIBUTION_METHODS:
            invalid("attribution", f"must be one of {', '.join(ATTRIBUTION_METHODS)}, got '{self.attribution}'")
        if self.head_fusion not in HEAD_FUSIONS:
            invalid("head_fusion", f"must be one of {', '.join(HEAD_FUSIONS)}, got '{self.head_fusion}'")
        if self.patching not in PATCHING:
            invalid("patching", f"must be one of {', '.join(PATCHING)}, got '{self.patching}'")
        at_least(self, 1, "top_k", "lens_positions", "n_steps", "internal_batch_size", "exact_cells")
        at_least(self, 1000, "page_cells")
        in_interval(self, "[0, 1)", "discard_ratio")

    def summary_paths(self) -> list[str]:
        """The dotted paths of a run's summary (configs/schema.py)."""
        model = ["name", "family", "causal", "n_layers", "n_heads", "n_ctx", "vocab_size"]
        detector = ["detector", *HEAD, "score"]
        return [*under("model", model), "n_tokens", "target", "target_id", "target_given", "prediction",
                "prediction_prob", "attention_format", "attention_top_keys", "attention_mass_shown",
                "lens.available", "lens.target_rank_last", "lens.target_prob_last", "lens.first_in_top_k",
                "attribution.available", "attribution.method", "attribution.delta", "attribution.top.*.position",
                "attribution.top.*.token", "attribution.top.*.score", *under("detectors.*", detector),
                "patching.available", "patching.foil", "patching.clean", "patching.corrupted",
                *under("patching.grids.*", ["what", "method", "layer", "unit", "effect", "normalized"]), *CHECKS]
