"""k-shot prompts as token ids: exactly the ids the tokenizer gives the prompt text, split for caching.

A prompt is the text

    demo_1 SEP demo_2 SEP ... demo_k SEP template(query)     followed by a verbalizer

with demo_i = template(text_i) + verbalizer(label_i), and [BOS] before it where the tokenizer adds one.

Why the whole prompt text is tokenized: tokenizing the demonstrations apart from the query is not the
same. A byte-level BPE tokenizer (GPT-2's, SmolLM2's) turns a trailing "\\n\\n" into one token but the
same characters before a word into two, so the ids of "demos" + the ids of "query" are ids that
tokenizing the prompt never produces, and the model is scored on a prompt nobody wrote.

For one (seed, shots, condition) every prompt is tokenized whole; the shared prefix that the scorer
encodes once (key/value cache) is the longest run of ids that ALL these prompts start with. It is a prefix
of every prompt's ids by construction: where the tokenizer merges across the demonstration/query boundary
the prefix simply ends earlier (typically before the last separator, which moves into the query part), and
where prompts share nothing it is empty (or the BOS) and every prompt runs whole.

BOS: `bos="auto"` puts before the text the special ids the tokenizer itself adds (its `add_special_tokens`
behaviour: Llama's <s>, nothing for GPT-2 or SmolLM2); trailing ones ([SEP], EOS) never, a prompt is
continued. `bos="always"` forces the tokenizer's BOS token, `bos="never"` adds nothing.

Example:
    >>> enc = encode_task(load_task("sentiment"), tok, shots=[0, 4], conditions=["gold"], seeds=[0], n_ctx=1024)
    >>> prompts, gold = enc[(0, 4, "gold")]
    >>> prompts.prefix + prompts.queries[0] == lead_ids(tok) + tok(prompt_text_0, add_special_tokens=False).input_ids
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from .choices import BOS_MODES
from .task import CONDITIONS, CONTENT_FREE, ICLTask, TaskError, condition_labels, split_examples

__all__ = ["BOS_MODES", "Encoded", "EncodedPrompts", "demo_text", "encode_task", "lead_ids", "prompt_texts"]

Encoded = dict[tuple[int, int, str], tuple["EncodedPrompts", list[int]]]  # (seed, k, condition) -> prompts, gold


@dataclass
class EncodedPrompts:
    """Token ids for one (seed, shots, condition): a shared prefix, the rest of each prompt, the labels' ids.

    prefix + queries[i] is exactly the tokenization of prompt i's text (with the BOS rule applied).
    """

    prefix: list[int]  # ids every prompt starts with: encoded once and cached by the scorer
    queries: list[list[int]]  # the rest of each prompt (>= 1 id); the last is the content-free "N/A" query
    verbalizers: list[list[int]]  # one token list per label: the ids that follow the template's tail


def _encode(tok: Any, text: str) -> list[int]:
    return list(tok(text, add_special_tokens=False)["input_ids"])


def lead_ids(tok: Any, bos: str = "auto") -> list[int]:
    """The ids put before every prompt: see the module docstring for `bos` ('auto', 'always', 'never')."""
    if bos not in BOS_MODES:
        raise ConfigError(f"bos must be one of {', '.join(BOS_MODES)}, got '{bos}'")
    if bos == "never":
        return []
    # what the tokenizer adds itself: the ids before the plain encoding of a probe text
    probe = "a"
    plain, full = _encode(tok, probe), list(tok(probe)["input_ids"])
    start = next((i for i in range(len(full) - len(plain) + 1) if full[i : i + len(plain)] == plain), 0)
    lead = full[:start]
    if bos == "always":
        if tok.bos_token_id is None:
            raise ConfigError("bos=always, but the model's tokenizer has no BOS token")
        if lead[:1] != [tok.bos_token_id]:
            lead = [tok.bos_token_id, *lead]
    return lead


def _check_verbalizers(tok: Any, task: ICLTask, words: Sequence[str], what: str) -> list[list[int]]:
    # Encode each word after the template's tail ("\nSentiment:"), keeping the tokens that follow it: that
    # is how it is tokenized in a prompt. SentencePiece tokenizers would otherwise add a word-start marker.
    anchor = task.template.rsplit("{text}", 1)[1]
    head = _encode(tok, anchor) if anchor else []
    out = []
    for label, w in zip(task.labels, words, strict=True):
        joint = _encode(tok, anchor + w)
        ids = joint[len(head) :] if head and joint[: len(head)] == head else _encode(tok, w)
        if not ids:
            raise TaskError(f"Task '{task.name}': {what} {w!r} of label '{label}' encodes to no tokens")
        if tok.unk_token_id is not None and tok.unk_token_id in ids:
            raise TaskError(f"Task '{task.name}': {what} {w!r} of label '{label}' is unknown to the tokenizer")
        out.append(ids)
    if len({tuple(v) for v in out}) < len(out):
        raise TaskError(f"Task '{task.name}': two {what}s encode to the same tokens")
    return out


def demo_text(task: ICLTask, demos: Sequence[int], labels: Sequence[int], words: Sequence[str]) -> str:
    """The demonstrations part of a prompt: template(text) + verbalizer(label) + separator, per demonstration."""
    return "".join(task.fill(task.examples[i][0]) + words[y] + task.separator
                   for i, y in zip(demos, labels, strict=True))


def prompt_texts(task: ICLTask, demos: str, queries: Sequence[int]) -> list[str]:
    """Every prompt's text: the demonstrations, then each query's template; last the content-free query."""
    return [demos + task.fill(task.examples[i][0]) for i in queries] + [demos + task.fill(CONTENT_FREE)]


def _common_prefix_len(seqs: Sequence[Sequence[int]]) -> int:
    first, n = seqs[0], min(map(len, seqs))
    for i in range(n):
        t = first[i]
        if any(s[i] != t for s in seqs):
            return i
    return n


def _check_continuations(tok: Any, task: ICLTask, lead: list[int], texts: Sequence[str], ids: Sequence[list[int]],
                         words: Sequence[str], verbalizers: list[list[int]], k: int) -> None:
    """Spot check (first query and the content-free one) that prompt + verbalizer tokenizes as the prompt's ids
    + the verbalizer's ids, i.e. that a verbalizer does not merge with the end of the prompt."""
    for text, prompt_ids in ((texts[0], ids[0]), (texts[-1], ids[-1])):
        for w, v in zip(words, verbalizers, strict=True):
            if lead + _encode(tok, text + w) != prompt_ids + v:
                raise TaskError(f"Task '{task.name}': after a {k}-shot prompt, {w!r} does not tokenize as after the "
                                f"template alone (it merges with the prompt's last characters); start it with a "
                                f"space or end the template with one")


def encode_task(task: ICLTask, tok: Any, shots: Sequence[int], conditions: Sequence[str], seeds: Sequence[int],
                n_ctx: int | None, *, bos: str = "auto") -> Encoded:
    """Tokenize every prompt text whole, checking verbalizers and lengths first.

    Returns {(seed, k, condition): (prompts, gold label index per query)}; the content-free
    query is appended to `prompts.queries` (it has no gold label). Raises TaskError / ConfigError.
    """
    for c in conditions:
        if c not in CONDITIONS:
            raise ConfigError(f"Unknown condition '{c}' (choose from {', '.join(CONDITIONS)})")
    if any(k < 0 for k in shots):
        raise ConfigError("shots must be >= 0")
    lead = lead_ids(tok, bos)
    verb = {"task": _check_verbalizers(tok, task, list(task.verbalizers.values()), "verbalizer")}
    if "unrelated" in conditions:
        verb["unrelated"] = _check_verbalizers(tok, task, task.unrelated, "unrelated word")
    label_ix = {lab: i for i, lab in enumerate(task.labels)}
    out = {}
    for seed in seeds:
        pool, queries = split_examples(task, max(shots), seed)
        gold = [label_ix[task.examples[i][1]] for i in queries]
        for cond in conditions:
            key = "unrelated" if cond == "unrelated" else "task"
            words = task.unrelated if cond == "unrelated" else list(task.verbalizers.values())
            for k in shots:
                # one rng per (seed, condition, k) so adding a shot count never changes the others
                rng = np.random.default_rng([seed, CONDITIONS.index(cond), k])
                demos = pool[:k]
                labels = condition_labels(task, [label_ix[task.examples[i][1]] for i in demos], cond, rng)
                texts = prompt_texts(task, demo_text(task, demos, labels, words), queries)
                ids = [lead + list(x) for x in tok(texts, add_special_tokens=False)["input_ids"]]
                if min(map(len, ids)) == len(lead):  # the first verbalizer token is read at the prompt's last id
                    raise TaskError(f"Task '{task.name}': a query encodes to no tokens (empty text and template?)")
                _check_continuations(tok, task, lead, texts, ids, words, verb[key], k)
                # every prompt keeps >= 1 id of its own: its last position predicts the label
                P = min(_common_prefix_len(ids), min(map(len, ids)) - 1)
                prompts = EncodedPrompts(ids[0][:P], [x[P:] for x in ids], verb[key])
                longest = max(map(len, ids)) + max(map(len, prompts.verbalizers))
                if n_ctx is not None and longest > n_ctx:
                    raise TaskError(f"Task '{task.name}': a {k}-shot prompt has {longest} tokens, longer than the "
                                    f"model's context of {n_ctx} (use fewer shots)")
                out[(seed, k, cond)] = (prompts, gold)
    return out
