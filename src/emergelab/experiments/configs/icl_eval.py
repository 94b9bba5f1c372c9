"""The config of the `icl-eval` experiment: every key `emergelab config icl-eval` prints and
`--set` takes. Torch-free, so `emergelab config` and `emergelab list` start fast; `experiments/icl_eval.py`
runs it."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...config import at_least, invalid
from ...icl.choices import BOS_MODES, CONDITIONS
from ..base import RunSettings
from ..budget import Budget, Term
from .schema import CHECKS, under


@dataclass
class ICLEvalConfig(RunSettings):
    """`seed` draws the weights of `model=random`; `seeds` draw the demonstrations and queries."""

    model: str = ""  # an alias (smollm2-135m), a local HF causal LM folder (offline), or 'random' (untrained)
    task: str = "sentiment"  # a built-in task (sentiment, continent, category) or a task YAML file
    shots: list[int] = field(default_factory=lambda: [0, 1, 2, 4, 8, 16])  # demonstrations per prompt
    conditions: list[str] = field(default_factory=lambda: ["gold"])  # gold, random, flipped, unrelated
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # each: its own demonstrations and queries
    bos: str = "auto"  # auto: BOS only where the tokenizer adds one itself; always; never
    cached: bool = True  # encode the demonstrations' shared prefix once (same log-probs, several times faster)
    batch_size: int = 32  # query sequences per forward
    n_boot: int = 1000  # bootstrap resamples of the 90% accuracy intervals

    def validate(self) -> None:
        super().validate()
        for key, values in (("shots", self.shots), ("conditions", self.conditions), ("seeds", self.seeds)):
            if not values:
                invalid(key, "must list at least one value")
            if len(set(values)) != len(values):
                invalid(key, "values must be distinct")
        if min(self.shots) < 0:
            invalid("shots", "must be >= 0")
        if min(self.seeds) < 0:
            invalid("seeds", "must be >= 0")
        bad = [c for c in self.conditions if c not in CONDITIONS]
        if bad:
            invalid("conditions", f"unknown condition '{bad[0]}' (choose from {', '.join(CONDITIONS)})")
        if self.bos not in BOS_MODES:
            invalid("bos", f"must be one of {', '.join(BOS_MODES)}, got '{self.bos}'")
        at_least(self, 1, "batch_size", "n_boot")

    def summary_paths(self) -> list[str]:
        """The dotted paths of a run's summary (configs/schema.py): one row per condition and number of shots,
        and the first condition's numbers at the most shots."""
        accuracy = ["accuracy", "accuracy_ci90.*", "calibrated_accuracy", "calibrated_accuracy_ci90.*"]
        row = ["condition", "shots", *accuracy, "accuracy_min", "accuracy_max", "accuracy_by_seed.*",
               "calibrated_accuracy_min", "calibrated_accuracy_max", "calibrated_accuracy_by_seed.*", "n_queries"]
        return ["model", "task", "labels.*", "chance", "shots.*", "conditions.*", "seeds.*", *under("rows.*", row),
                *under("at_max_shots", ["condition", "shots", *accuracy]), "gain", *CHECKS]


def budget(cfg: ICLEvalConfig, *, n_examples: int) -> Budget:
    """Memory and compute of the bootstrap intervals over a task of `n_examples` examples (experiments/budget.py):
    `n_boot` resamples of every seed's queries, for each condition and number of shots (the model's own forward
    passes are bounded by the task and the model's context length, checked on the model folder)."""
    resamples = cfg.n_boot * len(cfg.seeds) * n_examples
    cells = 2 * len(cfg.conditions) * len(cfg.shots)  # plain and calibrated accuracy
    return Budget(memory=[Term("the bootstrap resamples", 24 * resamples, ("n_boot", "seeds"), transient=True)],
                  compute=[Term("the bootstrap resamples", 4 * cells * resamples, ("n_boot", "seeds", "shots"))])
