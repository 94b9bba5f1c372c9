"""The one offline loader of Hugging Face models: a local folder -> (model, tokenizer, context length).

Every `from_pretrained` call passes `local_files_only=True`, so no code path can reach a hub, whatever the
folder's config names. The process environment is left alone (no `HF_HUB_OFFLINE`): setting it would
also switch a user's own downloads in the same process offline.

    kind="causal"  AutoModelForCausalLM (icl-eval scores continuations with it)
    kind="base"    AutoModel (hidden states, e.g. MiniLM's token vectors for text-attention)

Example:
    >>> lm = load_hf_model("models/gpt2", kind="causal")
    >>> lm.model.training, lm.n_ctx, lm.tokenizer("Hi")["input_ids"]
    (False, 1024, [17250])
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

from ..errors import EmergelabError

__all__ = ["KINDS", "HFModel", "ModelLoadError", "check_model_folder", "context_length", "load_hf_model",
           "load_tokenizer", "quiet_transformers"]

KINDS = ("causal", "base")
# config attributes that name the context length, by model family (GPT-2, Llama/BERT, older GPTs)
CONTEXT_KEYS = ("n_positions", "max_position_embeddings", "n_ctx")
# what from_pretrained raises on a bad folder; SafetensorError: a corrupt or truncated weights file
LOAD_ERRORS = (OSError, ValueError, KeyError, TypeError, ImportError, SafetensorError)


class ModelLoadError(EmergelabError):
    """The model path is not a local Hugging Face folder that loads offline."""


@dataclass
class HFModel:
    model: torch.nn.Module  # in eval mode, on the device asked for
    tokenizer: Any  # a transformers PreTrainedTokenizerBase
    n_ctx: int | None  # the longest sequence the model takes (from its config); None if the config names none


def check_model_folder(path: str | Path) -> Path:
    """`path` as a Path if it is a folder with a config.json, else ModelLoadError (one line)."""
    p = Path(path)
    if not p.is_dir():
        why = "it does not exist; " if not p.exists() else ""
        raise ModelLoadError(f"Model path '{path}' is not a folder ({why}expected a local Hugging Face model folder)")
    if not (p / "config.json").is_file():
        raise ModelLoadError(f"Model folder '{path}' has no config.json (not a Hugging Face model folder)")
    for weights in sorted(p.glob("*.safetensors")):
        check_safetensors(weights)
    return p


def check_safetensors(path: Path) -> None:
    """A weights file whose header or size is wrong (corrupt, truncated) -> ModelLoadError, without loading it:
    the header declares where every tensor ends, so the file must be at least that long."""
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n)) if 0 < n < 100_000_000 else None
        ends = [v["data_offsets"][1] for k, v in (header or {}).items() if k != "__metadata__"]
        if header is None or 8 + n + max(ends, default=0) > path.stat().st_size:
            raise ValueError("truncated or not a safetensors file")
    except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
        raise ModelLoadError(f"Weights file '{path}' is corrupt or truncated ({e}); replace it") from None


def quiet_transformers() -> None:
    """No transformers progress bars (loading, saving shards): our own progress output stays readable."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own progress output stays readable; errors still surface


# what a saved tokenizer leaves in a model folder: fast (tokenizer.json), BPE (vocab.json + merges.txt), WordPiece
# (vocab.txt), SentencePiece (*.model), tiktoken; tokenizer_config.json alone names a tokenizer class
TOKENIZER_FILES = ("tokenizer*", "vocab*", "merges.txt", "*.model", "*.tiktoken")


def load_tokenizer(path: str | Path) -> Any:
    """The tokenizer saved in a local model folder (offline). Raises ModelLoadError, also for a folder with no
    tokenizer files (transformers would build an empty tokenizer from config.json alone)."""
    p = check_model_folder(path)
    if not any(any(p.glob(pattern)) for pattern in TOKENIZER_FILES):
        raise ModelLoadError(f"Model folder '{path}' has no tokenizer files (tokenizer.json, tokenizer_config.json, "
                             f"vocab.json + merges.txt, ...): save the model's tokenizer into it")
    from transformers import AutoTokenizer

    quiet_transformers()
    try:
        tok = AutoTokenizer.from_pretrained(p, local_files_only=True)
    except LOAD_ERRORS as e:
        raise ModelLoadError(f"Could not load a tokenizer from '{path}': {_first_line(e)}") from None
    if len(tok) < 2:
        raise ModelLoadError(f"The tokenizer of '{path}' has an empty vocabulary ({len(tok)} token): its tokenizer "
                             f"files are incomplete; save the model's tokenizer into the folder again")
    return tok


def context_length(path: str | Path) -> int | None:
    """The context length a local model folder's config names (without loading the weights), or None."""
    p = check_model_folder(path)
    from transformers import AutoConfig

    try:
        cfg = AutoConfig.from_pretrained(p, local_files_only=True)
    except LOAD_ERRORS as e:
        raise ModelLoadError(f"Could not read the config of '{path}': {_first_line(e)}") from None
    return _n_ctx(cfg)


def load_hf_model(path: str | Path, kind: str = "causal", *, device: str | torch.device = "cpu",
                  **model_kwargs: Any) -> HFModel:
    """Load (model in eval mode, tokenizer, context length) from a local folder, offline only.

    `kind` is 'causal' (a language-model head) or 'base' (hidden states); `model_kwargs` go to
    `from_pretrained` (e.g. `attn_implementation="eager"` where attention weights are needed).
    A missing folder, a folder without config.json, or one that does not load is a ModelLoadError.
    """
    if kind not in KINDS:
        raise ModelLoadError(f"Unknown model kind '{kind}' (choose from {', '.join(KINDS)})")
    tokenizer = load_tokenizer(path)
    from transformers import AutoModel, AutoModelForCausalLM

    auto = AutoModelForCausalLM if kind == "causal" else AutoModel
    try:
        model = auto.from_pretrained(Path(path), local_files_only=True, **model_kwargs)
    except LOAD_ERRORS as e:
        what = "a causal LM" if kind == "causal" else "a model"
        raise ModelLoadError(f"Could not load {what} from '{path}': {_first_line(e)}") from None
    model.eval().to(device)
    return HFModel(model, tokenizer, _n_ctx(model.config))


def _n_ctx(cfg: Any) -> int | None:
    return next((getattr(cfg, a) for a in CONTEXT_KEYS if isinstance(getattr(cfg, a, None), int)), None)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
