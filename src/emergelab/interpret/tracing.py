"""`trace()`: one way to read a model's activations, for our HookedModules and any `transformers` model.

Our models expose HookPoints (`blocks.0.attn.hook_pattern`, ...). A `transformers` model of a mapped family
(GPT-2; Llama, Mistral, Qwen2/3, SmolLM; GPT-NeoX/Pythia; BERT, MiniLM: see `interpret/names.py`) gets the
same TransformerLens-style names through torch forward hooks on its modules. Any other module path of the
model (`model.layers.3.mlp`) is accepted too: its output is recorded (the first element of a tuple output).

Canonical names (B batch, T positions, C d_model, H query heads, D d_head, V vocabulary):

    hook_embed                           (B, T, C)   token embeddings
    hook_pos_embed                       learned positional embeddings, broadcastable to (B, T, C)
                                         ((1, T, C) in GPT-2 and BERT, (T, C) in our Transformer)
    blocks.{i}.hook_resid_pre            (B, T, C)   the stream entering block i (= hidden_states[i])
    blocks.{i}.attn.hook_pattern         (B, H, T_query, T_key)  attention weights; one per query head in
                                         grouped-query attention (Llama / SmolLM: H query heads share fewer KV)
    blocks.{i}.attn.hook_z               (B, T, H, D)  per-head attention output before the output projection
    blocks.{i}.hook_attn_out             (B, T, C)   what attention adds to the stream
    blocks.{i}.hook_resid_mid            (B, T, C)   the stream between attention and MLP (absent for
                                         GPT-NeoX with parallel residual, and for our attention-only models)
    blocks.{i}.hook_mlp_out              (B, T, C)   what the MLP adds to the stream
    blocks.{i}.hook_resid_post           (B, T, C)   the stream leaving block i
    ln_final.hook_normalized             (B, T, C)   after the final norm (absent in BERT: post-LN)
    logits                               (B, T, V)   causal LMs: the unembedding's output; for our models the
                                         forward's return value when it is one tensor

Versus `output_hidden_states` (checked in tests/unit/test_trace.py): hidden_states[0] is block 0's
resid_pre and hidden_states[i + 1] block i's resid_post, except the last one for GPT-2, Llama and GPT-NeoX:
transformers returns it after the final norm, i.e. it equals `ln_final.hook_normalized`, not the last
block's resid_post. In BERT every hidden state is a resid_post (post-LN: the stream is normalized).

Attention patterns need eager attention: when a pattern is asked for and the model runs SDPA (or another
fused kernel), trace switches it to eager for that call and restores it afterwards, also on error. The
switch itself changes outputs by ~1e-7 (another kernel); compare with a plain forward of eager attention.

Tracing runs under `torch.no_grad()`, stores detached tensors and never changes what the model computes;
every hook it adds is removed when the call ends, whatever happens in the forward.

Readers and writers share this module's resolution: `resolve(model)` gives a `Target` (names -> sites ->
modules, `Target.hook` the one place a site becomes a torch hook); `interpret/intervene.py` (`edit`, the
ablations) and `interpret/patching.py` write through it, on the same names.

Example:
    >>> lm = load_hf_model("models/smollm2", kind="causal")
    >>> cache = trace(lm, "The capital of France is", names=lambda n: "hook_pattern" in n)
    >>> cache["blocks.3.attn.hook_pattern"].shape           # (1, 9, T, T): 9 query heads (sharing 3 KV heads)
    >>> cache = trace(lm.model, ids, names=["blocks.2.hook_resid_post"], stop_at_layer=3)  # runs 3 blocks
    >>> cache = trace(our_transformer, tokens)              # the same names as run_with_cache, plus logits
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..hooks import ActivationCache, HookedModule
from ..registry import did_you_mean
from .names import FAMILIES, HEADS, INPUT, LOGITS, OUTPUT, WEIGHTS, Site, hf_name_map, templates

__all__ = ["Target", "TraceCache", "UnknownActivationName", "activation_names", "resolve", "trace"]

Names = str | Sequence[str] | Callable[[str], bool] | None
_OUR_BLOCK = re.compile(r"^(?P<prefix>(?:.+\.)?)blocks\.(?P<layer>\d+)$")


class TraceCache(ActivationCache):
    """name -> detached tensor, in the order of the names asked for (`cache["blocks.0.attn.hook_z"]`,
    or `cache["z", 0]`). `output` is the model's return value (None when `stop_at_layer` ended the forward)."""

    def __init__(self) -> None:
        super().__init__()
        self.output: Any = None
        self.stopped_at: int | None = None  # the stop_at_layer the forward ended at, or None

    @property
    def names(self) -> list[str]:
        return list(self)


class UnknownActivationName(ConfigError, KeyError):
    """A name that is neither a canonical activation name nor a module path of the model."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class _Stop(Exception):
    """Raised by the hook that ends the forward at `stop_at_layer`; caught by `trace`."""


Handle = torch.utils.hooks.RemovableHandle


@dataclass
class Target:
    """A model resolved for reading and writing activations by name (`resolve`): where each canonical name
    lives, the blocks, the heads. `trace` (readers) and `interpret.intervene.edit` (writers) share it."""

    model: nn.Module
    sites: dict[str, Site]  # canonical name -> where it lives (module path from `model`)
    known_blocks: list[str] | None  # module paths of the blocks, in order; None: found on first use
    n_heads: int | None
    what: str  # 'this gpt2 model', for messages
    output_logits: bool  # our HookedModules: `logits` is the forward's return value
    tokenizer: Any = None

    @property
    def blocks(self) -> list[str]:
        """Module paths of the blocks, in order ([] if unknown). Our models: `{prefix}blocks.{i}` under one prefix."""
        if self.known_blocks is None:
            matches = (_OUR_BLOCK.match(p) for p, _ in self.model.named_modules())
            found = [(m["prefix"], int(m["layer"])) for m in matches if m]
            one_prefix = len({prefix for prefix, _ in found}) == 1
            self.known_blocks = [f"{p}blocks.{i}" for p, i in sorted(found, key=lambda x: x[1])] if one_prefix else []
        return self.known_blocks

    def site(self, name: str) -> Site:
        """Where `name` is read or written; a module path (not a canonical name) is its module's output."""
        return self.sites.get(name, Site(name))

    def layer_name(self, layer: int, suffix: str) -> str:
        """The canonical name of `suffix` (e.g. 'attn.hook_z') in block `layer`: `blocks.{layer}.{suffix}`, with
        our wrapped models' prefix (`transformer.blocks.0.attn.hook_z`). Unknown layer or name: ConfigError."""
        n = len(self.blocks)
        if isinstance(layer, bool) or not isinstance(layer, int):
            raise ConfigError(f"A layer is an integer, got {layer!r}")
        prefix = self.blocks[0][: -len("blocks.0")] if self.output_logits and n else ""
        name = f"{prefix}blocks.{layer}.{suffix}"
        if not 0 <= layer < n:
            blocks = f"it has {n} blocks (0..{n - 1})" if n else "it has no blocks mapped"
            raise UnknownActivationName(f"Unknown activation name '{name}' for {self.what}: {blocks}")
        if name not in self.sites:
            block = f"{prefix}blocks.{layer}."
            inside = [k[len(block):] for k in self.sites if k.startswith(block)]
            raise UnknownActivationName(f"Unknown activation name '{name}' for {self.what}; its blocks have "
                                        f"{', '.join(inside)}")
        return name

    def select(self, names: Names) -> list[str]:
        """The names asked for, checked (unknown: UnknownActivationName listing the valid ones), each once."""
        if names is None or callable(names):
            if not self.sites:
                raise ConfigError(f"{self.what} has no mapped activation names (mapped families: "
                                  f"{', '.join(f.name for f in FAMILIES)}); pass module paths as names, "
                                  f"e.g. '{_example_path(self)}'")
            return list(self.sites) if names is None else [n for n in self.sites if names(n)]
        wanted = [names] if isinstance(names, str) else list(names)
        for name in wanted:
            if name not in self.sites and not _is_module(self.model, name):
                raise UnknownActivationName(_unknown_message(self, name))
        return list(dict.fromkeys(wanted))

    def modules(self, names: list[str]) -> list[nn.Module]:
        """The module each name is read from (one walk of the model, not one per name)."""
        points = getattr(self.model, "hook_points", {})
        if all(n in points for n in names):  # our models keep their HookPoints by name
            return [points[n] for n in names]
        by_path = dict(self.model.named_modules())
        return [by_path[self.site(n).module] for n in names]

    def hook(self, name: str, module: nn.Module, fn: Callable[[torch.Tensor], Any], write: bool = False) -> Handle:
        """Call `fn(activation)` where `name` is computed; `write`: the activation becomes what fn returns
        (a tensor of the same shape; None keeps it). The one place a site becomes a torch hook:

            OUTPUT / WEIGHTS  forward hook; the output (its element 0, or 1 for WEIGHTS) is read / replaced,
                              a tuple or ModelOutput keeping its other elements
            INPUT / HEADS     forward pre-hook with kwargs; the first positional input (or `hidden_states`)
                              is read / replaced; HEADS views it (B, T, H * D) as (B, T, H, D)
        """
        site = self.site(name)
        if site.read in (OUTPUT, WEIGHTS):
            index = 1 if site.read == WEIGHTS else 0
            if not write:
                def read_output(mod: nn.Module, args: tuple, output: Any) -> None:
                    t = _first_tensor(output, index)
                    if t is not None:
                        fn(t)

                return module.register_forward_hook(read_output)
            if index:
                raise ConfigError(f"'{name}' cannot be edited on {self.what}: the attention weights are applied "
                                  f"inside its attention module; edit the per-head output (attn.hook_z) instead")

            def write_output(mod: nn.Module, args: tuple, output: Any) -> Any:
                t = _first_tensor(output)
                return None if t is None else _replace_first(output, _checked(name, t, fn(t)))

            return module.register_forward_hook(write_output)
        assert site.read in (INPUT, HEADS), site.read
        heads = self.n_heads if site.read == HEADS else None

        def on_input(mod: nn.Module, args: tuple, kwargs: dict) -> Any:
            positional = bool(args) and isinstance(args[0], torch.Tensor)
            t = args[0] if positional else kwargs.get("hidden_states")
            if not isinstance(t, torch.Tensor):
                return None
            view = t.unflatten(-1, (heads, -1)) if heads else t  # (B, T, H, D) for z
            new = fn(view)
            if not write:
                return None
            new = _checked(name, view, new)
            new = new.flatten(-2) if heads else new
            return ((new, *args[1:]), kwargs) if positional else (args, {**kwargs, "hidden_states": new})

        return module.register_forward_pre_hook(on_input, with_kwargs=True)

    def encode(self, inputs: Any) -> Any:
        """Text (a string or a list of strings) through the model's tokenizer; anything else as it is."""
        if isinstance(inputs, str) or (isinstance(inputs, list) and inputs and all(isinstance(x, str) for x in inputs)):
            if self.tokenizer is None:
                raise ConfigError("Text inputs need the model's tokenizer: pass the HFModel that load_hf_model "
                                  "returns, or token ids")
            try:
                return self.tokenizer(inputs, return_tensors="pt", padding=isinstance(inputs, list))
            except ValueError as e:  # e.g. a batch of texts and a tokenizer without a padding token
                raise ConfigError(f"Could not tokenize the inputs: {str(e).strip().splitlines()[0]}") from None
        return inputs

    def call(self, inputs: Any) -> Any:
        """The model on `inputs` (see `trace`), tensors moved to the model's device."""
        model = self.model
        inputs = self.encode(inputs)
        device = next((p.device for p in model.parameters()), None)
        move = (lambda v: v.to(device) if isinstance(v, torch.Tensor) else v) if device is not None else (lambda v: v)
        if isinstance(inputs, Mapping):
            return model(**{k: move(v) for k, v in inputs.items()})
        if isinstance(inputs, tuple):
            return model(*(move(v) for v in inputs))
        return model(move(inputs))


def resolve(model: Any) -> Target:
    """`model` (one of ours, a transformers model, an HFModel, any nn.Module) resolved for names and hooks."""
    tokenizer = None
    if not isinstance(model, nn.Module) and isinstance(getattr(model, "model", None), nn.Module):
        model, tokenizer = model.model, getattr(model, "tokenizer", None)  # an HFModel from models.hf
    if not isinstance(model, nn.Module):
        raise ConfigError(f"trace() needs a torch model (nn.Module), got {type(model).__name__}")
    if isinstance(model, HookedModule):
        sites = {name: Site(name) for name in model.hook_names()} | {LOGITS: Site("")}
        return Target(model, sites, None, None, f"this {type(model).__name__}", True, tokenizer)
    name_map = hf_name_map(model)
    if name_map is None:
        return Target(model, {}, [], None, f"this {type(model).__name__}", False, tokenizer)
    return Target(model, name_map.sites, name_map.blocks, name_map.n_heads, f"this {name_map.family} model",
                  False, tokenizer)


def activation_names(model: Any) -> list[str]:
    """Every canonical name `trace(model, ...)` offers, in forward order (module paths are accepted too)."""
    return list(resolve(model).sites)


def trace(model: Any, inputs: Any, names: Names = None, stop_at_layer: int | None = None) -> TraceCache:
    """Run `model` on `inputs` once and return the activations named by `names`.

    model: one of our HookedModules, a `transformers` model, any nn.Module (module paths only), or the
        HFModel that `models.hf.load_hf_model` returns (then `inputs` may be text: its tokenizer is used).
    inputs: token ids (B, T) (the model's first argument), a tuple of positional arguments, a mapping of
        keyword arguments (a tokenizer's BatchEncoding), or a string / list of strings with an HFModel.
        Tensors are moved to the model's device.
    names: None = every canonical name; a callable filter over canonical names; a name or a list of names
        (canonical names or module paths; an unknown one is an UnknownActivationName listing the valid ones).
    stop_at_layer: run blocks 0 .. k-1 only (0 = embeddings only; negative counts from the end, as Python
        slices), so one early layer of a big model is cached without computing the rest.
    Returns a TraceCache (a dict: name -> tensor; shapes in this module's docstring; `.output` the return value).

    Example:
        >>> cache = trace(gpt2, ids, names=["blocks.0.attn.hook_pattern", "blocks.0.hook_resid_post"])
        >>> cache["blocks.0.attn.hook_pattern"].shape       # (B, n_heads, T, T)
    """
    target = resolve(model)
    wanted = target.select(names)
    stop = _stop_layer(target, stop_at_layer)
    cache = TraceCache()
    handles: list[Handle] = []
    logits = target.output_logits and LOGITS in wanted
    patterns = any(target.site(n).read == WEIGHTS for n in wanted)
    hooked = [n for n in wanted if not (target.output_logits and n == LOGITS)]
    try:
        for name, module in zip(hooked, target.modules(hooked), strict=True):
            handles.append(target.hook(name, module, _store(cache, name)))
        if stop is not None:
            handles.append(_add_stop(target, stop))
        with torch.no_grad(), _eager_attention(target.model, patterns):
            try:
                cache.output = target.call(inputs)
            except _Stop:
                cache.stopped_at = stop
    finally:
        for handle in handles:
            handle.remove()
    if logits and isinstance(cache.output, torch.Tensor):
        cache[LOGITS] = cache.output.detach()
    if names is not None and not callable(names):
        _check_all_ran(target, wanted, cache)
    return _in_order(cache, wanted)


def _store(cache: TraceCache, name: str) -> Callable[[torch.Tensor], None]:
    def store(t: torch.Tensor) -> None:
        cache[name] = t.detach()

    return store


def _in_order(cache: TraceCache, wanted: list[str]) -> TraceCache:
    """The cache's names in the order asked for (canonical names: forward order), not the order hooks fired."""
    ordered = TraceCache()
    ordered.update((name, cache[name]) for name in wanted if name in cache)
    ordered.output, ordered.stopped_at = cache.output, cache.stopped_at
    return ordered


def _is_module(model: nn.Module, path: str) -> bool:
    if not path:
        return False
    try:
        model.get_submodule(path)
    except AttributeError:
        return False
    return True


def _unknown_message(target: Target, name: str) -> str:
    paths = [p for p, _ in target.model.named_modules() if p]
    hint = did_you_mean(name, list(target.sites) + paths)
    if not hint.startswith(" Did you mean"):
        layers = f" (i = 0..{len(target.blocks) - 1})" if target.blocks else ""
        listed = f"{', '.join(templates(list(target.sites)))}{layers}, or " if target.sites else ""
        hint = f" Valid names: {listed}a module path such as '{_example_path(target)}'."
    return f"Unknown activation name '{name}' for {target.what}.{hint}"


def _example_path(target: Target) -> str:
    paths = [p for p, _ in target.model.named_modules() if p]
    inside = [p for p in paths if target.blocks and p.startswith(target.blocks[0] + ".")]
    return (inside or paths or ["(the model has no submodules)"])[0]


def _stop_layer(target: Target, stop_at_layer: int | None) -> int | None:
    if stop_at_layer is None:
        return None
    n = len(target.blocks)
    if not n:
        raise ConfigError(f"stop_at_layer needs a model whose blocks are known; {target.what} has none mapped")
    if isinstance(stop_at_layer, bool) or not isinstance(stop_at_layer, int) or not -n <= stop_at_layer <= n:
        raise ConfigError(f"stop_at_layer must be an integer from {-n} to {n} ({target.what} has {n} blocks), "
                          f"got {stop_at_layer!r}")
    return stop_at_layer % n if stop_at_layer < 0 else stop_at_layer


def _first_tensor(value: Any, index: int = 0) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value if index == 0 else None
    if hasattr(value, "to_tuple"):  # a transformers ModelOutput
        value = value.to_tuple()
    if isinstance(value, (tuple, list)) and len(value) > index and isinstance(value[index], torch.Tensor):
        return value[index]
    return None


def _replace_first(output: Any, new: torch.Tensor) -> Any:
    """`output` with its first tensor replaced by `new`: a tensor, a tuple / list, or a ModelOutput."""
    if isinstance(output, torch.Tensor):
        return new
    if hasattr(output, "to_tuple"):  # a transformers ModelOutput: an ordered dict whose first value is the tensor
        output[next(iter(output.keys()))] = new
        return output
    if hasattr(output, "_fields"):  # a namedtuple takes its fields as arguments
        return type(output)(new, *output[1:])
    return type(output)((new, *output[1:]))


def _checked(name: str, old: torch.Tensor, new: Any) -> torch.Tensor:
    """What an edit returned, as the activation it replaces (None keeps the activation, edited in place)."""
    if new is None:
        return old
    if not isinstance(new, torch.Tensor):
        raise ConfigError(f"The edit of '{name}' returned {type(new).__name__}, not a tensor (or None)")
    if new.shape != old.shape:
        raise ConfigError(f"The edit of '{name}' returned shape {tuple(new.shape)}; the activation has "
                          f"{tuple(old.shape)}")
    return new.to(dtype=old.dtype, device=old.device)


def _add_stop(target: Target, stop: int) -> Handle:
    """Registered after the readers, so the last block's own readers fire before the forward ends; block 0's
    resid_pre reader (a pre-hook) never fires at stop 0, as in our models, where it sits inside the block."""

    def halt(*_: Any) -> None:
        raise _Stop

    if stop == 0:
        return target.model.get_submodule(target.blocks[0]).register_forward_pre_hook(halt, prepend=True)
    return target.model.get_submodule(target.blocks[stop - 1]).register_forward_hook(halt)


@contextlib.contextmanager
def _eager_attention(model: nn.Module, needed: bool) -> Iterator[None]:
    """Eager attention for the duration of the block (where `needed` and the model runs another kernel)."""
    config = getattr(model, "config", None)
    before = getattr(config, "_attn_implementation", None)
    if not needed or before in (None, "eager") or not hasattr(model, "set_attn_implementation"):
        yield
        return
    model.set_attn_implementation("eager")
    try:
        if config._attn_implementation != "eager":
            raise ConfigError(f"Attention patterns need eager attention and {type(model).__name__} cannot switch "
                              f"to it; load the model with attn_implementation='eager'")
        yield
    finally:
        model.set_attn_implementation(before)


def _check_all_ran(target: Target, wanted: list[str], cache: TraceCache) -> None:
    missing = [n for n in wanted if n not in cache]
    if not missing:
        return
    why = (f"the forward stopped after block {cache.stopped_at - 1}" if cache.stopped_at
           else "the forward stopped before block 0" if cache.stopped_at == 0 else
           "it did not run in this forward pass or gave no tensor")
    raise ConfigError(f"No activation '{missing[0]}' from {target.what}: {why}"
                      + (f" ({len(missing) - 1} more names missing)" if len(missing) > 1 else ""))

