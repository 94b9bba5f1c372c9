"""k-shot evaluation: task files, prompt conditions, and cached vs naive scoring on a tiny random GPT-2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from emergelab.errors import ConfigError, EmergelabError
from emergelab.icl import kshot

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
EXTRA_WORDS = [" very good", " very bad"]  # multi-token verbalizers, in the tokenizer's vocabulary


def _all_texts() -> list[str]:
    return [x for n in kshot.builtin_tasks() for x in kshot.task_texts(kshot.load_task(n))] + EXTRA_WORDS


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module, object, int]:
    torch.set_num_threads(1)
    folder = kshot.make_tiny_causal_lm(tmp_path_factory.mktemp("tiny-gpt2"), _all_texts(), n_layer=2, n_embd=32)
    model, tok, n_ctx = kshot.load_causal_lm(folder)
    return folder, model, tok, n_ctx


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
    short = kshot.make_tiny_causal_lm(tmp_path / "short-lm", _all_texts(), n_positions=40)
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
