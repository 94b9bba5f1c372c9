"""Attribution of one target logit to the inputs, through Captum: integrated gradients, saliency, gradient x input.

Two kinds of input:

- **Token models** (`attribute_tokens`): our Transformer and any `transformers` model with logits (B, T, V).
  Token ids are discrete, so the attribution is taken on the INPUT EMBEDDINGS, the output of the model's
  token-embedding module (`get_input_embeddings()`; our Transformer's `embed`, i.e. `hook_embed`): a forward
  hook replaces that module's output with the embeddings Captum varies, so positional embeddings, masks and
  everything after run as usual. The target is one logit per row: the token at a position (default: the
  model's own next-token prediction at the last real position). Per-token scores (B, T) are the attributions
  summed over d_model; the raw attributions (B, T, C) come along.
- **Image / vector inputs** (`attribute_image`): a classifier x (B, ...) -> logits (B, n_classes), e.g. the
  digits `SOMAttentionNet` on standardized 8x8 images (B, 64); per-pixel maps (B, H, W) with `image_shape`.

Methods (Captum's classes, called with the arguments below; tests check each equals a direct Captum call):

    integrated_gradients   IntegratedGradients (Gauss-Legendre, `n_steps`); attributions sum to
                           f(x) - f(baseline) up to the returned convergence `delta` (B,)
    saliency               Saliency, abs=True: |d f / d x|; token scores sum |grad| over d_model (an L1 norm)
    gradient_x_input       InputXGradient: x * d f / d x (for tokens: the embedding times its gradient)

Baselines (integrated gradients): for tokens "mean" (default: the mean token embedding of the vocabulary at
every position), "zero", a token id or "pad" (that token's embedding everywhere), or a tensor broadcastable to
the input; for images a number (0.0: for standardized digits the mean image) or a tensor. Why not zero
embeddings by default: in pre-norm models whose first block reads the embeddings alone (Llama / SmolLM, Qwen,
GPT-NeoX: no additive position embedding), RMSNorm / LayerNorm of alpha * e jumps from 0 to its full value
near alpha = 0, IG's quadrature misses the jump and completeness fails (delta ~ 1-5 logits on tiny random
Llama / Qwen / NeoX at 64 steps, ~1e-6 with the mean baseline; GPT-2 is fine either way). And the first
position stays at its input embedding (`keep_first=True`): in a pretrained LM it is the attention sink, with
massive activations that swing wildly along the path. Measured on SmolLM2-135M, "The capital of France is" ->
" Paris", 50 steps: delta -105 logits with the mean baseline moving position 0 too, +1304 from zero
embeddings, +13 from the <|im_end|> token; 0.04 with the mean baseline keeping position 0 (0.000 at 200 steps).
Longer inputs need more steps: a 32-token SmolLM2 input (f(x) - f(baseline) = 18.2) has delta 1.8, -0.51 and
-0.15 at 16, 64 and 128 steps. Check `delta` against that gap before reading the scores.

Memory: every forward + backward runs on at most `internal_batch_size` rows (IG evaluates B * n_steps rows);
a batch larger than it is attributed in chunks of examples (the no-grad forwards that pick the target and
read f(x), f(baseline) run once on the B inputs). Parameters are frozen during the call (no graph is kept
for weight gradients) and their requires_grad flags restored afterwards.

Example:
    >>> lm = load_hf_model("/tmp/hf-cache/smollm2-135m-instruct")
    >>> a = attribute_tokens(lm, "The capital of France is", target=" Paris", internal_batch_size=16)
    >>> a.tokens[0], a.scores[0]          # ['The', 'Ġcapital', ...], (T,) per-token IG scores
    >>> a.delta, a.target_tokens          # (1,) convergence delta, ['ĠParis']
    >>> attribute_image(net, x, image_shape=(8, 8)).maps.shape     # (B, 8, 8)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..registry import did_you_mean

__all__ = ["METHODS", "ImageAttribution", "TokenAttribution", "attribute_image", "attribute_tokens"]

METHODS = ("integrated_gradients", "saliency", "gradient_x_input")
Target = int | str | Sequence[int | str] | torch.Tensor | None


@dataclass
class TokenAttribution:
    """What `attribute_tokens` returns (B rows, T positions, C d_model). Pad positions score 0."""

    method: str
    scores: torch.Tensor  # (B, T) attributions summed over d_model
    attributions: torch.Tensor  # (B, T, C) on the token embeddings
    input_ids: torch.Tensor  # (B, T) int64, right-padded
    mask: torch.Tensor  # (B, T) bool, True at real tokens
    tokens: list[list[str]]  # per row, the real tokens as the tokenizer spells them (str(id) without one)
    target_positions: torch.Tensor  # (B,) the position whose logit is attributed
    target_ids: torch.Tensor  # (B,) the token whose logit is attributed
    target_tokens: list[str]
    target_logits: torch.Tensor  # (B,) f(x): the target logit on the input
    baseline_logits: torch.Tensor | None  # (B,) f(baseline) (integrated gradients only)
    delta: torch.Tensor | None  # (B,) sum(attributions) - (f(x) - f(baseline)) (integrated gradients only)
    n_steps: int | None
    internal_batch_size: int | None


@dataclass
class ImageAttribution:
    """What `attribute_image` returns."""

    method: str
    attributions: torch.Tensor  # the input's shape (B, ...)
    maps: torch.Tensor  # (B, *image_shape); channels summed for (B, C, H, W) inputs
    targets: torch.Tensor  # (B,) the class whose logit is attributed
    target_logits: torch.Tensor  # (B,)
    baseline_logits: torch.Tensor | None
    delta: torch.Tensor | None
    n_steps: int | None
    internal_batch_size: int | None


# --- token models --------------------------------------------------------------------------------------------

def attribute_tokens(model: Any, inputs: Any, *, method: str = "integrated_gradients", target: Target = None,
                     position: int | Sequence[int] = -1, baseline: str | int | torch.Tensor = "mean",
                     keep_first: bool = True, n_steps: int = 50, internal_batch_size: int | None = None,
                     tokenizer: Any = None, embedding: nn.Module | str | None = None) -> TokenAttribution:
    """Attribute one logit per row of a token model to its input embeddings.

    model: our Transformer (or any module returning logits (B, T, V) from token ids), a `transformers` model
        with logits, or the HFModel of `models.hf.load_hf_model` (its tokenizer is then used).
    inputs: a text or list of texts (needs a tokenizer), token ids (T,) / (B, T) / lists, or a mapping with
        `input_ids` (and `attention_mask`). Rows of different lengths are right-padded and masked.
    target: the token whose logit is attributed: None = the model's argmax at `position` (its prediction),
        a token id, a token string (" Paris": must be ONE token of the tokenizer), or one of these per row.
    position: the position whose logit is read, per row; negative counts back from each row's last real
        token (-1 = the last one: the next-token prediction of a causal LM).
    baseline: integrated gradients' starting point: "mean" (the mean token embedding), "zero", "pad", a token
        id, or a tensor (B|1, T, C) / (T, C).
    keep_first: integrated gradients keeps position 0 at its input embedding along the whole path (so it
        gets attribution 0): in pretrained LMs it is the attention sink, whose massive activations make the
        path integral diverge from any baseline (see the module docstring). False: position 0 moves too.
    n_steps, internal_batch_size: IG's integration steps; the most rows one forward runs (None = all
        B * n_steps at once). Smaller bounds memory, costs time.
    embedding: the token-embedding module (or its module path) when the model is neither an HF model nor ours.
    Returns a TokenAttribution (scores (B, T), attributions (B, T, C), target, delta).

    Example:
        >>> a = attribute_tokens(lm, ["The capital of France is"], target=" Paris", n_steps=32)
        >>> float(a.scores.sum() - (a.target_logits - a.baseline_logits).sum())   # ~ a.delta
    """
    method = _check_method(method, n_steps, internal_batch_size)
    module, tokenizer = _unwrap(model, tokenizer)
    embed = _embedding_module(module, embedding)
    device = next(module.parameters()).device
    ids, mask = _token_batch(inputs, tokenizer)
    ids, mask = ids.to(device), mask.to(device)
    lengths = mask.sum(1)
    positions = _positions(position, lengths)
    with _frozen(module), torch.no_grad():
        logits = _logits(module(input_ids=ids, attention_mask=mask) if _is_hf(module) else module(ids), module)
    target_ids = _target_ids(target, logits, positions, tokenizer)
    with torch.no_grad():
        embeds = embed(ids).detach()  # (B, T, C)
    base = _token_baseline(baseline, embeds, embed, tokenizer, device) if method == METHODS[0] else None
    if base is not None and keep_first:
        base = base.clone()
        base[:, 0] = embeds[:, 0]

    def forward(e: torch.Tensor, ids_: torch.Tensor, mask_: torch.Tensor, pos_: torch.Tensor,
                tok_: torch.Tensor) -> torch.Tensor:
        """Embeddings (N, T, C) -> the target logit of each row (N,); the embedding module returns `e`."""
        handle = embed.register_forward_hook(lambda _m, _i, _o: e)
        try:
            out = module(input_ids=ids_, attention_mask=mask_) if _is_hf(module) else module(ids_)
        finally:
            handle.remove()
        return _logits(out, module)[torch.arange(len(pos_), device=pos_.device), pos_, tok_]

    extra = (ids, mask, positions, target_ids)
    with _frozen(module):
        attr, delta = _run(method, forward, embeds, base, extra, n_steps, internal_batch_size)
        with torch.no_grad():
            target_logits = forward(embeds, *extra)
            baseline_logits = forward(base, *extra) if base is not None else None
    attr = attr.detach() * mask[..., None]
    return TokenAttribution(
        method, attr.sum(-1), attr, ids, mask.bool(), _token_strings(ids, lengths, tokenizer), positions, target_ids,
        [_token_string(int(t), tokenizer) for t in target_ids], target_logits, baseline_logits, delta,
        n_steps if method == METHODS[0] else None, internal_batch_size)


def _unwrap(model: Any, tokenizer: Any) -> tuple[nn.Module, Any]:
    if not isinstance(model, nn.Module) and isinstance(getattr(model, "model", None), nn.Module):
        return model.model, tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
    if not isinstance(model, nn.Module):
        raise ConfigError(f"attribution needs a torch model (nn.Module), got {type(model).__name__}")
    return model, tokenizer


def _is_hf(module: nn.Module) -> bool:
    return hasattr(module, "get_input_embeddings") and hasattr(module, "config")


def _embedding_module(module: nn.Module, embedding: nn.Module | str | None) -> nn.Module:
    if isinstance(embedding, nn.Module):
        return embedding
    if isinstance(embedding, str):
        paths = dict(module.named_modules())
        if embedding not in paths:
            hint = did_you_mean(embedding, list(paths))
            close = hint if hint.startswith(" Did you mean") else ""  # not the list of every module path
            raise ConfigError(f"embedding '{embedding}' is not a module path of this {type(module).__name__}.{close}")
        return paths[embedding]
    if _is_hf(module):
        return module.get_input_embeddings()
    if isinstance(getattr(module, "embed", None), nn.Embedding):  # our Transformer (hook_embed reads its output)
        return module.embed
    raise ConfigError(f"cannot find the token embedding of this {type(module).__name__}: pass embedding= "
                      "(the nn.Embedding module or its module path)")


def _logits(out: Any, module: nn.Module) -> torch.Tensor:
    logits = getattr(out, "logits", out)
    if not isinstance(logits, torch.Tensor) or logits.ndim != 3:
        raise ConfigError(f"attribute_tokens needs a model that returns logits (B, T, V); this "
                          f"{type(module).__name__} returns {type(out).__name__} (load a causal LM: kind='causal')")
    return logits


def _token_batch(inputs: Any, tokenizer: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (ids (B, T) int64 right-padded, mask (B, T) int64)."""
    if hasattr(inputs, "keys") and "input_ids" in inputs:
        ids = torch.as_tensor(inputs["input_ids"])
        ids = ids[None] if ids.ndim == 1 else ids
        mask = inputs.get("attention_mask")
        mask = torch.ones_like(ids) if mask is None else torch.as_tensor(mask).reshape(ids.shape)
        return ids.long(), mask.long()
    if isinstance(inputs, str) or (isinstance(inputs, Sequence) and inputs and all(isinstance(s, str) for s in inputs)):
        if tokenizer is None:
            raise ConfigError("text inputs need a tokenizer: pass an HFModel or tokenizer=")
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        rows = [tokenizer(t)["input_ids"] for t in texts]
        empty = [t for t, r in zip(texts, rows, strict=True) if not r]
        if empty:
            raise ConfigError(f"text {empty[0]!r} has no tokens")
    else:
        try:
            t = torch.as_tensor(inputs)
        except (TypeError, ValueError, RuntimeError):
            raise ConfigError("token inputs must be texts, a mapping with input_ids, or integer ids (T,) / (B, T) "
                              "of equal lengths") from None
        if t.ndim not in (1, 2) or t.numel() == 0 or t.is_floating_point():
            raise ConfigError(f"token inputs must be integer ids (T,) or (B, T), got shape {tuple(t.shape)}")
        t = t[None] if t.ndim == 1 else t
        return t.long(), torch.ones_like(t, dtype=torch.long)
    pad = getattr(tokenizer, "pad_token_id", None)
    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), pad if pad is not None else 0, dtype=torch.long)
    mask = torch.zeros((len(rows), T), dtype=torch.long)
    for b, r in enumerate(rows):
        ids[b, :len(r)], mask[b, :len(r)] = torch.tensor(r), 1
    return ids, mask


def _positions(position: int | Sequence[int], lengths: torch.Tensor) -> torch.Tensor:
    pos = torch.as_tensor(position, dtype=torch.long, device=lengths.device).expand(len(lengths)).clone()
    pos = torch.where(pos < 0, pos + lengths, pos)
    bad = ((pos < 0) | (pos >= lengths)).nonzero()
    if len(bad):
        b = int(bad[0])
        raise ConfigError(f"position {position} is outside row {b} ({int(lengths[b])} tokens)")
    return pos


def _target_ids(target: Target, logits: torch.Tensor, positions: torch.Tensor, tokenizer: Any) -> torch.Tensor:
    B, V = logits.shape[0], logits.shape[-1]
    if target is None:
        return logits[torch.arange(B), positions].argmax(-1)
    items = [target] if isinstance(target, int | str) else list(torch.as_tensor(target).reshape(-1).tolist()
                                                                  if isinstance(target, torch.Tensor) else target)
    if len(items) == 1:
        items = items * B
    if len(items) != B:
        raise ConfigError(f"target names {len(items)} tokens for {B} rows (give one, or one per row)")
    ids = [_token_id(t, tokenizer) for t in items]
    bad = [i for i in ids if not 0 <= i < V]
    if bad:
        raise ConfigError(f"target token id {bad[0]} is outside the vocabulary (0 .. {V - 1})")
    return torch.tensor(ids, dtype=torch.long, device=logits.device)


def _token_id(t: int | str, tokenizer: Any) -> int:
    if not isinstance(t, str):
        return int(t)
    if tokenizer is None:
        raise ConfigError(f"target {t!r} is a string: pass a tokenizer (or an HFModel), or give a token id")
    pieces = tokenizer(t, add_special_tokens=False)["input_ids"]
    if len(pieces) == 1:
        return int(pieces[0])
    vocab = tokenizer.get_vocab()
    if t in vocab:  # already spelled as a vocabulary entry ('ĠParis')
        return int(vocab[t])
    spelled = tokenizer.convert_ids_to_tokens(pieces)
    raise ConfigError(f"target {t!r} is not one token of this tokenizer (it splits into {spelled})")


def _token_baseline(baseline: Any, embeds: torch.Tensor, embed: nn.Module, tokenizer: Any,
                    device: torch.device) -> torch.Tensor:
    if isinstance(baseline, str) and baseline == "zero":
        return torch.zeros_like(embeds)
    if isinstance(baseline, str) and baseline == "mean":
        if not isinstance(embed, nn.Embedding):
            raise ConfigError("baseline='mean' needs an nn.Embedding token embedding; use 'zero' or a token id")
        return embed.weight.detach().mean(0).to(embeds.dtype).expand_as(embeds)
    if isinstance(baseline, str) and baseline == "pad":
        pad = getattr(tokenizer, "pad_token_id", None)
        if pad is None:
            raise ConfigError("baseline='pad' needs a tokenizer with a pad token; use 'zero' or a token id")
        baseline = pad
    if isinstance(baseline, int) and not isinstance(baseline, bool):
        with torch.no_grad():
            return embed(torch.full(embeds.shape[:2], baseline, dtype=torch.long, device=device)).detach()
    if isinstance(baseline, torch.Tensor):
        try:
            return baseline.to(device=device, dtype=embeds.dtype).expand_as(embeds)
        except RuntimeError:
            raise ConfigError(f"baseline of shape {tuple(baseline.shape)} does not broadcast to the embeddings "
                              f"{tuple(embeds.shape)}") from None
    raise ConfigError(f"baseline must be 'zero', 'mean', 'pad', a token id or a tensor, got {baseline!r}")


def _token_string(i: int, tokenizer: Any) -> str:
    return tokenizer.convert_ids_to_tokens(i) if tokenizer is not None else str(i)


def _token_strings(ids: torch.Tensor, lengths: torch.Tensor, tokenizer: Any) -> list[list[str]]:
    return [[_token_string(int(i), tokenizer) for i in row[:n]] for row, n in zip(ids, lengths.tolist(), strict=True)]


# --- images / vectors ----------------------------------------------------------------------------------------

def attribute_image(model: nn.Module, x: torch.Tensor, *, method: str = "integrated_gradients",
                    target: int | Sequence[int] | torch.Tensor | None = None, baseline: float | torch.Tensor = 0.0,
                    n_steps: int = 50, internal_batch_size: int | None = None,
                    image_shape: Sequence[int] | None = None) -> ImageAttribution:
    """Attribute one class logit per row of a classifier x (B, ...) -> logits (B, n_classes) to its inputs.

    target: the class per row (one int for all), None = the predicted class.
    baseline: a number or a tensor broadcastable to x (IG; 0.0 = the mean image of standardized inputs).
    image_shape: reshape each row's attributions into a map, e.g. (8, 8) for flat digits (B, 64); without it
        `maps` is the attributions, channels summed for (B, C, H, W) inputs.
    Returns an ImageAttribution (attributions like x, maps (B, *image_shape), targets, delta).

    Example:
        >>> a = attribute_image(net, torch.from_numpy(split.X_test[:8]), image_shape=(8, 8))
        >>> a.maps.shape, a.delta.abs().max()       # (8, 8, 8), small
    """
    method = _check_method(method, n_steps, internal_batch_size)
    if not isinstance(model, nn.Module):
        raise ConfigError(f"attribute_image needs a torch model (nn.Module), got {type(model).__name__}")
    device = next(model.parameters()).device
    x = torch.as_tensor(x).to(device)
    if not x.is_floating_point() or x.ndim < 2:
        raise ConfigError(f"image inputs must be float (B, ...), got {x.dtype} of shape {tuple(x.shape)}")
    B = x.shape[0]
    with _frozen(model), torch.no_grad():
        logits = model(x)
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        raise ConfigError("attribute_image needs a model that returns logits (B, n_classes)")
    if target is None:
        targets = logits.argmax(-1)
    else:
        targets = torch.as_tensor(target, dtype=torch.long, device=device).reshape(-1)
        if len(targets) not in (1, B):
            raise ConfigError(f"target names {len(targets)} classes for {B} inputs (give one, or one per input)")
        targets = targets.expand(B).clone()
        if ((targets < 0) | (targets >= logits.shape[1])).any():
            raise ConfigError(f"target class must be in 0 .. {logits.shape[1] - 1}, got {target}")
    base = None
    if method == METHODS[0]:
        try:
            base = torch.as_tensor(baseline, dtype=x.dtype, device=device).expand_as(x)
        except RuntimeError:
            raise ConfigError(f"baseline does not broadcast to the inputs {tuple(x.shape)}") from None

    def forward(inp: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        return model(inp)[torch.arange(len(cls), device=cls.device), cls]

    with _frozen(model):
        attr, delta = _run(method, forward, x, base, (targets,), n_steps, internal_batch_size)
        with torch.no_grad():
            target_logits = forward(x, targets)
            baseline_logits = forward(base, targets) if base is not None else None
    attr = attr.detach()
    if image_shape is not None:
        shape = tuple(int(s) for s in image_shape)
        if attr[0].numel() != int(torch.tensor(shape).prod()):
            raise ConfigError(f"image_shape {shape} does not hold the {attr[0].numel()} values of one input")
        maps = attr.reshape(B, *shape)
    else:
        maps = attr.sum(1) if attr.ndim == 4 else attr
    return ImageAttribution(method, attr, maps, targets, target_logits, baseline_logits, delta,
                            n_steps if method == METHODS[0] else None, internal_batch_size)


# --- shared --------------------------------------------------------------------------------------------------

def _check_method(method: str, n_steps: int, internal_batch_size: int | None) -> str:
    if method not in METHODS:
        raise ConfigError(f"Unknown attribution method '{method}'.{did_you_mean(method, list(METHODS))}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
        raise ConfigError(f"n_steps must be a positive integer, got {n_steps!r}")
    if internal_batch_size is not None and (isinstance(internal_batch_size, bool)
                                            or not isinstance(internal_batch_size, int) or internal_batch_size < 1):
        raise ConfigError(f"internal_batch_size must be a positive integer or None, got {internal_batch_size!r}")
    return method


def _run(method: str, forward: Any, x: torch.Tensor, base: torch.Tensor | None, extra: tuple[torch.Tensor, ...],
         n_steps: int, internal_batch_size: int | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One Captum call per chunk of at most `internal_batch_size` examples (Captum itself cannot split examples).
    -> (attributions like x, delta (B,) or None)."""
    from captum.attr import InputXGradient, IntegratedGradients, Saliency

    B = x.shape[0]
    chunk = B if internal_batch_size is None else min(B, internal_batch_size)
    attrs, deltas = [], []
    for s in range(0, B, chunk):
        sl = slice(s, s + chunk)
        xs, args = x[sl].detach().clone().requires_grad_(True), tuple(a[sl] for a in extra)
        if method == "integrated_gradients":
            a, d = IntegratedGradients(forward).attribute(
                xs, baselines=base[sl].contiguous(), additional_forward_args=args, n_steps=n_steps,
                internal_batch_size=internal_batch_size, return_convergence_delta=True)
            deltas.append(d.detach())
        elif method == "saliency":
            a = Saliency(forward).attribute(xs, additional_forward_args=args, abs=True)
        else:
            a = InputXGradient(forward).attribute(xs, additional_forward_args=args)
        attrs.append(a.detach())
    return torch.cat(attrs), (torch.cat(deltas) if deltas else None)


@contextlib.contextmanager
def _frozen(model: nn.Module) -> Iterator[None]:
    """Eval mode (no dropout noise) and no weight gradients (no graph kept for them) while attributing; the
    training flags and requires_grad flags come back afterwards."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        for p, _ in flags:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        for m, mode in modes:
            m.training = mode
