"""An untrained GPT-2 with a byte-level BPE tokenizer, built offline into a local Hugging Face folder (and an
untrained grouped-query-attention Llama with a word-level tokenizer: `random_llama`, what `lm-induction`'s tiny
runs measure).

The control model of `icl-eval` (`model=random`): random weights must score at chance whatever the prompt,
so it shows what a task's accuracy looks like without any learned ability. It is also what the experiment's
tiny overrides evaluate, so `icl-eval` runs without a downloaded model. The tokenizer is GPT-2 style (byte
level, no BOS added, a "\\n\\n" token learned from blank lines at the end of a piece), trained on the texts
the prompts are made of, so every prompt tokenizes into known pieces.

Example:
    >>> folder = random_causal_lm("runs/x/model", task_texts(load_task("sentiment")), seed=0)
    >>> tok = load_hf_model(folder).tokenizer
    >>> tok.tokenize("Sentiment: good\\n\\n"), tok.tokenize("\\n\\nReview")
    (['Sentiment', ':', 'Ġgood', 'ĊĊ'], ['Ċ', 'Ċ', 'Review'])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from .hf import quiet_transformers

__all__ = ["random_causal_lm", "random_llama"]

SPECIAL = "<|endoftext|>"  # GPT-2's one special token: BOS, EOS and padding


def random_causal_lm(folder: str | Path, texts: Sequence[str], *, seed: int, vocab_size: int = 1000,
                     n_layer: int = 2, n_embd: int = 32, n_head: int = 2, n_positions: int = 1024) -> Path:
    """Train a byte-level BPE tokenizer on `texts`, draw a GPT-2 (`n_head` must divide `n_embd`) from `seed`,
    and save both to `folder` (created). Same texts and seed -> the same folder contents. Returns the folder."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    quiet_transformers()
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=1, special_tokens=[SPECIAL],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    # each text also ends a piece with a blank line, as demonstrations do, so "\n" + "\n" is a learned merge
    raw.train_from_iterator([*texts, *[t + "\n\n" for t in texts]], trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token=SPECIAL, eos_token=SPECIAL)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=n_positions, n_layer=n_layer, n_embd=n_embd, n_head=n_head,
                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    with torch.random.fork_rng(devices=[]):  # GPT-2's init draws from the global RNG: seed it, then restore it
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(cfg)
    folder = Path(folder)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def random_llama(folder: str | Path, words: Sequence[str], *, seed: int, n_positions: int = 64) -> Path:
    """An untrained 2-layer Llama (d_model 32, 4 query heads sharing 2 KV heads: grouped-query attention as in
    SmolLM2) with a word-level tokenizer of [PAD], [UNK], [BOS] and `words`, saved to `folder`. Weights are drawn
    with std 0.3, not 0.02, so its attention patterns differ from head to head instead of being nearly uniform."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    quiet_transformers()
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[BOS]", *words])}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]", pad_token="[PAD]", bos_token="[BOS]")
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=n_positions,
                      initializer_range=0.3, pad_token_id=0, bos_token_id=2, eos_token_id=2)
    with torch.random.fork_rng(devices=[]):  # transformers' init draws from the global RNG: seed it, then restore
        torch.manual_seed(seed)
        model = LlamaForCausalLM(cfg)
    folder = Path(folder)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
