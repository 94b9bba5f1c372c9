"""The config of the `lm-induction` experiment: every key `emergelab config lm-induction` prints and
`--set` takes. Torch-free, so `emergelab config` and `emergelab list` start fast; `experiments/lm_induction.py`
runs it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ...config import at_least, in_interval, invalid
from ..base import RunSettings
from ..budget import Budget, Term
from .schema import CHECKS, HEAD, under

ABLATIONS = ("mean", "zero", "resample")  # what an ablated head writes (interpret.intervene.ablate_heads)


@dataclass
class LMInductionConfig(RunSettings):
    """`seed` draws the random token sequences and the control's head sets."""

    model: str = "smollm2-135m"  # a causal LM: a built-in alias, a local Hugging Face folder or an emergelab run id
    seq_len: int = 50  # random tokens per copy; each sequence is BOS + the tokens + the same tokens again
    n_seqs: int = 8  # sequences in the batch every score and loss is measured on
    bos: bool = True  # start every sequence with the tokenizer's BOS token (where it has one)
    induction_threshold: float = 0.3  # prefix-matching score from which a head is named an induction head
    previous_token_threshold: float = 0.4  # previous-token score from which a head is named a previous-token head
    n_ablated: int = 5  # the named induction heads with the highest scores ablated together (0: every named one)
    ablation: Literal["mean", "zero", "resample"] = "mean"  # a head writes its batch mean, 0, or another sequence's
    control_draws: int = 10  # random sets of as many heads outside the circuit, ablated in their place
    per_head: bool = True  # also ablate each ablated induction head on its own (one forward pass each)

    def validate(self) -> None:
        super().validate()
        if not self.model:
            invalid("model", "set a causal LM: an alias (smollm2-135m), a local Hugging Face folder or a run id")
        at_least(self, 2, "seq_len")
        at_least(self, 1, "n_seqs", "control_draws")
        at_least(self, 0, "n_ablated")
        in_interval(self, "(0, 1]", "induction_threshold", "previous_token_threshold")
        if self.ablation not in ABLATIONS:
            invalid("ablation", f"must be one of {', '.join(ABLATIONS)}, got '{self.ablation}'")
        if self.ablation == "resample" and self.n_seqs < 2:
            invalid("n_seqs", "resample ablation takes each head's output on another sequence: needs >= 2")

    def summary_paths(self) -> list[str]:
        """The dotted paths of a run's summary (configs/schema.py): the model, the named heads with their scores,
        the ablation (the `induction` experiment's shape), the rises it measures and the checks."""
        scores = ("prefix_matching", "previous_token", "duplicate_token", "induction")
        losses = ("repeated_loss", "first_loss")
        pool = (*HEAD, "previous_token_score", "prefix_matching_score")
        control = ["choice", "how", "n_heads", *under("pool.*", pool), "exhaustive",
                   *under("draws.*", (*under("heads.*", HEAD), *losses)), *losses, "repeated_loss_min",
                   "repeated_loss_max", "repeated_loss_std"]
        ablation = ["kind", *under("heads.*", HEAD), "clean_repeated_loss", "clean_first_loss", "ablated_repeated_loss",
                    "ablated_first_loss", *under("control", control), *under("per_head.*", (*HEAD, *losses))]
        model = ("spec", "folder", "model_type", "family", "n_layers", "n_heads", "n_kv_heads", "vocab_size",
                 "n_positions", "bos_id")
        return [*under("model", model), "seq_len", "n_seqs", *under("thresholds", ("induction", "previous_token")),
                *under("clean", ("first_loss", "repeated_loss")), *under("induction_heads.*", (*HEAD, *scores)),
                *under("previous_token_heads.*", (*HEAD, *scores)), *under("ablation", ablation), "rise",
                "first_moved", "control_rise", "control_rise_std", "wall_seconds", *CHECKS]

    @property
    def n_positions(self) -> int:
        """Tokens per sequence: BOS (if any) + two copies of `seq_len` random tokens."""
        return int(self.bos) + 2 * self.seq_len


def budget(cfg: LMInductionConfig, *, n_layers: int, n_heads: int, d_model: int, vocab_size: int,
           n_params: float) -> Budget:
    """Memory and compute of a run on a model of this shape (read from its config before it loads;
    experiments/budget.py): every layer's attention patterns and head outputs of the batch, its logits, and
    one forward pass per ablation (~2 x parameters x tokens each)."""
    B, T = cfg.n_seqs, cfg.n_positions
    patterns = 4 * n_layers * B * n_heads * T * T
    held = 4 * n_layers * B * T * d_model + 4 * B * T * vocab_size  # head outputs (mean reference), logits
    forwards = 2 + 1 + cfg.control_draws + (cfg.n_ablated or n_layers * n_heads) * cfg.per_head
    keys = ("n_seqs", "seq_len")
    return Budget(memory=[Term("the model's weights", 4 * n_params, ("model",)),
                          Term("the batch's head outputs and logits", held, keys),
                          Term("every layer's attention patterns", patterns, keys, transient=True)],
                  compute=[Term("the forward passes", 2 * n_params * B * T * forwards,
                                ("n_seqs", "seq_len", "control_draws"))])
