"""A Llama-architecture GGUF file -> an ordinary local Hugging Face folder (float32 safetensors + tokenizer).

transformers can load a GGUF itself (`from_pretrained(folder, gguf_file=...)`), but slowly: on a 2-core CPU
SmolLM2-135M took 80-200 s for the weights and about 50 s for the tokenizer, every time. This converter reads
the file once with the `gguf` package and writes a folder that `load_hf_model` loads in a second or two:

    weights    the header read with `struct` (`read_gguf`), tensor blocks memory-mapped and de-quantized with
               `gguf.quants.dequantize` (numpy; Q4_1, Q8_0, F16, F32, ...) to float32,
               renamed to transformers' Llama names; llama.cpp's converter permutes the rows of q and k
               (interleaved rotary pairs), which is undone exactly as transformers' GGUF loader does
               (`LlamaTensorProcessor._reverse_permute_weights`)
    config     a LlamaConfig from the `llama.*` metadata (tied embeddings when the file has no output.weight)
    tokenizer  byte-level BPE from `tokenizer.ggml.tokens` / `merges` with the `tokenizers` library, the
               tokens the file marks CONTROL as special tokens, bos/eos/unk/pad from their ids, and the chat
               template

The result is checked against transformers' own GGUF path in tests/unit/test_catalog.py (logits and token ids).
Needs `gguf` (pip install gguf); torch / transformers are imported only when converting.

Example:
    >>> convert_gguf("SmolLM2-135M-Instruct.Q4_1.gguf", "/tmp/smollm2")     # -> Path('/tmp/smollm2')
    >>> load_hf_model("/tmp/smollm2").model.config.num_hidden_layers
    30
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EmergelabError

__all__ = ["GGUFConvertError", "GGUFFile", "GGUFTensor", "convert_gguf", "hf_llama_name", "read_gguf",
           "reverse_permute"]

# GGUF tensor name (after "blk.{i}.") -> transformers LlamaForCausalLM parameter name
_BLOCK_NAMES = {
    "attn_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}
_TOP_NAMES = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
              "output.weight": "lm_head.weight"}
CONTROL = 3  # llama.cpp's token type of a control token (<|im_start|>, ...): a special token


class GGUFConvertError(EmergelabError):
    """The GGUF file cannot be read or is not a Llama-architecture model with a byte-level BPE tokenizer."""


def hf_llama_name(gguf_name: str) -> str | None:
    """'blk.3.attn_q.weight' -> 'model.layers.3.self_attn.q_proj.weight'; None for a tensor with no HF
    counterpart (e.g. rope_freqs, which transformers recomputes)."""
    if gguf_name in _TOP_NAMES:
        return _TOP_NAMES[gguf_name]
    if gguf_name.startswith("blk."):
        _, layer, rest = gguf_name.split(".", 2)
        if rest in _BLOCK_NAMES:
            return f"model.layers.{layer}.{_BLOCK_NAMES[rest]}"
    return None


def reverse_permute(w: Any, n_head: int) -> Any:
    """Undo llama.cpp's row permutation of a q or k projection (rows = n_head x d_head, numpy or torch):
    llama.cpp stores each head's rotary pairs interleaved (0, d/2, 1, d/2+1, ...); transformers wants them
    as two halves. `n_head` is the number of heads whose rows these are (KV heads for k)."""
    d = w.shape[0] // n_head // 2
    return w.reshape(n_head, d, 2, *w.shape[1:]).swapaxes(2, 1).reshape(w.shape)


@dataclass
class GGUFTensor:
    name: str
    shape: tuple[int, ...]  # torch order (slowest dimension first; GGUF lists them fastest first)
    qtype: int  # ggml type id (gguf.GGMLQuantizationType)
    offset: int  # from the start of the file
    nbytes: int


@dataclass
class GGUFFile:
    """A GGUF file's metadata (key -> value; arrays as lists) and tensor table; tensor data stay on disk."""

    path: Path
    fields: dict[str, Any]
    tensors: list[GGUFTensor]

    def array(self, t: GGUFTensor) -> Any:
        """The tensor's raw blocks as a read-only uint8 memmap of shape (*shape[:-1], bytes per row)."""
        import numpy as np

        data = np.memmap(self.path, dtype=np.uint8, mode="r", offset=t.offset, shape=(t.nbytes,))
        return data.reshape(*t.shape[:-1], -1)


_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


def read_gguf(path: str | Path) -> GGUFFile:
    """Metadata and tensor table of a GGUF file (versions 2 and 3), read with `struct`.

    gguf's own `GGUFReader` builds a numpy view for every element of every array, which for SmolLM2's
    98,000 vocabulary and merge strings took 14-23 s here; this reads the same header in well under a second,
    and the tensor sizes come from `gguf.constants.GGML_QUANT_SIZES`."""
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(24)
        if len(head) < 24 or head[:4] != b"GGUF":
            raise GGUFConvertError(f"'{path}' is not a GGUF file (no GGUF magic)")
        version, n_tensors, n_kv = struct.unpack("<IQQ", head[4:])
        if version not in (2, 3):
            raise GGUFConvertError(f"GGUF file '{path}' has version {version} (only 2 and 3 are read)")
        buf = f.read(64 << 20)  # the header (SmolLM2's: ~2 MB) sits in the first megabytes
    pos = 0

    def take(fmt: str) -> Any:
        nonlocal pos
        (value,) = struct.unpack_from(fmt, buf, pos)
        pos += struct.calcsize(fmt)
        return value

    def string() -> str:
        nonlocal pos
        n = take("<Q")
        pos += n
        return buf[pos - n:pos].decode("utf-8", errors="replace")

    def value(kind: int) -> Any:
        if kind == _STRING:
            return string()
        if kind == _ARRAY:
            item, count = take("<I"), take("<Q")
            return [value(item) for _ in range(count)]
        return take(_SCALARS[kind])

    try:
        fields = {}
        for _ in range(n_kv):
            key = string()
            fields[key] = value(take("<I"))
        infos = []
        for _ in range(n_tensors):
            name = string()
            dims = [take("<Q") for _ in range(take("<I"))]
            infos.append((name, dims, take("<I"), take("<Q")))
    except (struct.error, KeyError, IndexError) as e:
        raise GGUFConvertError(f"GGUF file '{path}' has a truncated or corrupt header ({e})") from None
    align = int(fields.get("general.alignment", 32))
    start = (24 + pos + align - 1) // align * align
    tensors = []
    size = path.stat().st_size
    for name, dims, qtype, offset in infos:
        block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(qtype)]
        n = 1
        for d in dims:
            n *= d
        t = GGUFTensor(name, tuple(reversed(dims)), qtype, start + offset, n // block * type_size)
        if t.offset + t.nbytes > size:
            raise GGUFConvertError(f"GGUF file '{path}' is truncated (tensor {name} ends past the end of the file)")
        tensors.append(t)
    return GGUFFile(path, fields, tensors)


def _field(reader: GGUFFile, key: str, default: Any = None) -> Any:
    return reader.fields.get(key, default)


def _llama_config(reader: Any, has_output: bool) -> dict[str, Any]:
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        raise GGUFConvertError(f"GGUF architecture '{arch}' is not supported (only llama: SmolLM2, Llama, ...)")

    def need(key: str) -> Any:
        value = _field(reader, f"llama.{key}")
        if value is None:
            raise GGUFConvertError(f"GGUF metadata has no 'llama.{key}'")
        return value

    n_heads = int(need("attention.head_count"))
    d_model = int(need("embedding_length"))
    tokens = _field(reader, "tokenizer.ggml.tokens") or []
    ids = {k: _field(reader, f"tokenizer.ggml.{k}_token_id") for k in ("bos", "eos", "padding", "unknown")}
    cfg = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": d_model, "intermediate_size": int(need("feed_forward_length")),
        "num_hidden_layers": int(need("block_count")), "num_attention_heads": n_heads,
        "num_key_value_heads": int(_field(reader, "llama.attention.head_count_kv", n_heads)),
        "head_dim": int(_field(reader, "llama.rope.dimension_count", d_model // n_heads)),
        "max_position_embeddings": int(need("context_length")),
        "rms_norm_eps": float(need("attention.layer_norm_rms_epsilon")),
        "rope_parameters": {"rope_type": "default",
                            "rope_theta": float(_field(reader, "llama.rope.freq_base", 10000.0))},
        "vocab_size": int(_field(reader, "llama.vocab_size", len(tokens))),
        "hidden_act": "silu", "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": not has_output,
        "bos_token_id": ids["bos"], "eos_token_id": ids["eos"], "pad_token_id": ids["padding"],
    }
    return cfg


def _tokenizer(reader: Any) -> Any:
    """A transformers fast tokenizer (byte-level BPE) from the GGUF's tokenizer metadata."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    kind = _field(reader, "tokenizer.ggml.model")
    if kind != "gpt2":
        raise GGUFConvertError(f"GGUF tokenizer '{kind}' is not supported (only byte-level BPE, 'gpt2')")
    tokens = list(_field(reader, "tokenizer.ggml.tokens"))
    types = list(_field(reader, "tokenizer.ggml.token_type") or [])
    merges = [tuple(m.split(" ", 1)) for m in _field(reader, "tokenizer.ggml.merges")]
    spelling = bytes_to_unicode()
    alphabet = set(spelling.values())
    # as transformers' GGUF path: a token outside the byte alphabet is re-spelled byte by byte
    vocab = {(t if set(t) <= alphabet else "".join(spelling[b] for b in t.encode("utf-8"))): i
             for i, t in enumerate(tokens)}
    raw = Tokenizer(models.BPE(vocab=vocab, merges=merges, dropout=None, continuing_subword_prefix="",
                               end_of_word_suffix="", fuse_unk=False))
    add_prefix = bool(_field(reader, "tokenizer.ggml.add_space_prefix", False))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix)
    raw.decoder = decoders.ByteLevel()
    raw.post_processor = processors.ByteLevel(trim_offsets=False)
    control = [t for t, k in zip(tokens, types, strict=False) if k == CONTROL and set(t) <= alphabet]
    raw.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in control])

    def token(key: str) -> str | None:
        i = _field(reader, f"tokenizer.ggml.{key}_token_id")
        return tokens[i] if i is not None and 0 <= i < len(tokens) else None

    tok = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token=token("bos"), eos_token=token("eos"),
                                  unk_token=token("unknown"), pad_token=token("padding"))
    template = _field(reader, "tokenizer.chat_template")
    if template:
        tok.chat_template = template
    return tok


def convert_gguf(gguf_path: str | Path, out: str | Path, *,
                 progress: Callable[[str], None] | None = None) -> Path:
    """Write the Llama GGUF at `gguf_path` as a Hugging Face folder `out` (config.json, model.safetensors in
    float32, tokenizer files). `out` is written in place: callers that need atomicity (the model catalog)
    pass a temporary folder and rename it. `progress` gets one line per phase. Returns `out`."""
    say = progress or (lambda _msg: None)
    try:
        from gguf.quants import dequantize
    except ImportError:
        raise GGUFConvertError("reading a GGUF file needs the 'gguf' package: pip install gguf") from None
    import numpy as np
    import torch
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    say(f"reading {Path(gguf_path).name}")
    try:
        reader = read_gguf(gguf_path)
    except (OSError, ValueError) as e:
        raise GGUFConvertError(f"Could not read GGUF file '{gguf_path}': {e}") from None
    names = {t.name for t in reader.tensors}
    cfg = _llama_config(reader, has_output="output.weight" in names)
    heads = {"attn_q.weight": cfg["num_attention_heads"], "attn_k.weight": cfg["num_key_value_heads"]}

    say(f"de-quantizing {len(reader.tensors)} tensors to float32")
    state: dict[str, torch.Tensor] = {}
    for t in reader.tensors:
        name = hf_llama_name(t.name)
        if name is None:
            continue
        w = np.array(dequantize(reader.array(t), t.qtype), dtype=np.float32)  # a copy: the file is mapped read-only
        w = w.reshape(t.shape)
        n_head = heads.get(t.name.split(".", 2)[-1])
        if n_head is not None:
            w = reverse_permute(w, n_head)
        state[name] = torch.from_numpy(np.ascontiguousarray(w))

    say("writing model.safetensors, config.json and the tokenizer")
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    from transformers import LlamaConfig

    LlamaConfig(**cfg, dtype="float32").save_pretrained(out)
    _tokenizer(reader).save_pretrained(out)
    return out
