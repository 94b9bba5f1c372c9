"""lm-induction on a tiny random Llama with grouped-query attention (4 query heads sharing 2 KV heads) saved to a
temp folder: the repeated random tokens, the clean pass and the ablations (`interpret.lm_induction_probe`), and the
experiment through the `emergelab run lm-induction` command line (a report and a summary; bad input: exit 2 and
nothing created)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from emergelab import api
from emergelab.interpret.induction_probe import ablation_control
from emergelab.interpret.lm_induction_probe import (
    ablation_effects,
    measure_clean,
    repeated_random_tokens,
    token_loss,
)
from emergelab.models.catalog import model_status
from emergelab.models.hf import load_hf_model
from tests.fixtures.hf_models import tiny_family_model

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

SEQ_LEN = 10


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return tiny_family_model(tmp_path_factory.mktemp("llama"), "llama")


def test_repeated_random_tokens_are_bos_then_two_copies_without_special_ids() -> None:
    b = repeated_random_tokens(30, n_seqs=64, seq_len=SEQ_LEN, generator=torch.Generator().manual_seed(0), bos_id=2,
                               exclude=[0, 1, 2])
    assert b.tokens.shape == (64, 1 + 2 * SEQ_LEN) and b.start == 1
    assert (b.tokens[:, 0] == 2).all()
    assert torch.equal(b.tokens[:, 1:1 + SEQ_LEN], b.tokens[:, 1 + SEQ_LEN:])
    assert not torch.isin(b.tokens[:, 1:], torch.tensor([0, 1, 2])).any()
    assert set(b.tokens[:, 1:].unique().tolist()) == set(range(3, 30))  # every other id is drawn
    # loss index t predicts token t + 1: the first copy is tokens 1..L, the repeat L+1..2L
    assert (b.first_targets, b.repeated_targets) == (slice(0, SEQ_LEN), slice(SEQ_LEN, 2 * SEQ_LEN))
    mask = b.prefix_mask()  # a query of the repeat attends to the token after its first copy
    q = 1 + SEQ_LEN + 3
    assert mask[0, q].nonzero().flatten().tolist() == [q - SEQ_LEN + 1]
    assert mask[:, : 1 + SEQ_LEN].sum() == 0 and mask.sum() == 64 * SEQ_LEN
    no_bos = repeated_random_tokens(30, 2, SEQ_LEN, torch.Generator().manual_seed(0))
    assert no_bos.tokens.shape == (2, 2 * SEQ_LEN) and no_bos.first_targets == slice(0, SEQ_LEN - 1)


def test_clean_pass_and_ablations_on_a_gqa_llama(llama: Path) -> None:
    lm = load_hf_model(llama)
    b = repeated_random_tokens(len(lm.tokenizer), 3, SEQ_LEN, torch.Generator().manual_seed(1),
                               bos_id=lm.tokenizer.bos_token_id, exclude=lm.tokenizer.all_special_ids)
    clean = measure_clean(lm, b)
    assert set(clean.scores) == {"prefix_matching", "previous_token", "duplicate_token", "induction"}
    assert all(s.shape == (2, 4) for s in clean.scores.values())  # one score per query head
    assert all(((s >= 0) & (s <= 1)).all() for s in clean.scores.values())
    with torch.no_grad():
        plain = token_loss(lm.model(b.tokens).logits, b.tokens)
    assert torch.allclose(clean.token_loss, plain, atol=1e-4)  # eager (traced) vs the model's own attention
    assert clean.z["blocks.1.attn.hook_z"].shape == (3, 1 + 2 * SEQ_LEN, 4, 8)

    ablated, circuit = [(1, 2), (0, 2)], {(1, 0)}
    control = ablation_control(ablated, circuit, 2, 4, 3, random.Random(0))
    calls = []
    ab = ablation_effects(lm, b, clean, ablated, control, how="zero", step=lambda: calls.append(1))
    assert len(calls) == 1 + 3 + 2  # the ablated heads, 3 control sets, each head alone
    first, rep = b.split(clean.token_loss)
    assert (ab["clean_first_loss"], ab["clean_repeated_loss"]) == (round(first, 6), round(rep, 6))
    drawn = [{(h["layer"], h["head"]) for h in d["heads"]} for d in ab["control"]["draws"]]
    assert len(drawn) == 3 and all(len(s) == 2 and not s & (set(ablated) | circuit) for s in drawn)
    assert ab["ablated_repeated_loss"] != ab["clean_repeated_loss"]  # zeroing two heads changes the model
    assert [(h["layer"], h["head"]) for h in ab["per_head"]] == ablated
    curves = ab["positions"]
    assert {len(v) for v in curves.values()} == {2 * SEQ_LEN}
    assert all(lo <= m <= hi for lo, m, hi in zip(curves["control_min"], curves["control_mean"],
                                                  curves["control_max"], strict=True))
    # the repeat's mean of the ablated curve is the ablated repeated loss
    assert abs(sum(curves["ablated"][SEQ_LEN:]) / SEQ_LEN - ab["ablated_repeated_loss"]) < 1e-4
    # ablating no head is the clean model, whatever the ablation
    none = ablation_effects(lm, b, clean, [], {"choice": "none", "how": "", "n_heads": 0, "pool": [], "sets": [],
                                               "exhaustive": True}, how="mean")
    assert none["ablated_repeated_loss"] == none["clean_repeated_loss"] and none["control"]["repeated_loss"] is None


def _cli(*args: str, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    """`emergelab ...` in this process (typer's runner), from folder `cwd`: a subprocess costs ~15 s of imports."""
    from typer.testing import CliRunner

    from emergelab.cli import app

    monkeypatch.chdir(cwd)
    return CliRunner().invoke(app, list(args))


SMALL = ("seq_len=10", "n_seqs=3", "control_draws=3", "induction_threshold=0.09", "previous_token_threshold=0.16",
         "n_ablated=2", "threads=1")


def test_cli_run_writes_a_summary_and_a_report(llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sets = [x for kv in (f"model={llama}", *SMALL) for x in ("--set", kv)]
    r = _cli("run", "lm-induction", *sets, "--no-progress", "--json", cwd=tmp_path, monkeypatch=monkeypatch)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["status"] == "completed"
    s = json.loads(Path(doc["summary_path"]).read_text())
    assert s["model"]["family"] == "llama" and (s["model"]["n_layers"], s["model"]["n_heads"]) == (2, 4)
    assert s["model"]["n_kv_heads"] == 2
    # named heads: exactly those at or above the thresholds, highest score first
    for key, kind, th in (("induction_heads", "prefix_matching", 0.09), ("previous_token_heads", "previous_token",
                                                                         0.16)):
        scores = [h[kind] for h in s[key]]
        assert all(v >= th for v in scores) and scores == sorted(scores, reverse=True)
    assert s["induction_heads"], "the tiny model's two best prefix-matching heads score above 0.09"
    ablated = [(h["layer"], h["head"]) for h in s["ablation"]["heads"]]
    assert ablated == [(h["layer"], h["head"]) for h in s["induction_heads"][:2]]
    circuit = {(h["layer"], h["head"]) for h in s["induction_heads"] + s["previous_token_heads"]}
    for d in s["ablation"]["control"]["draws"]:
        heads = {(h["layer"], h["head"]) for h in d["heads"]}
        assert len(heads) == len(ablated) and not heads & circuit  # the control never holds a circuit head
    assert s["rise"] == pytest.approx(s["ablation"]["ablated_repeated_loss"] - s["clean"]["repeated_loss"], abs=1e-6)
    names = [c["name"] for c in s["checks"]]
    assert len(names) == 6 and any("raises the repeated-half loss by >= 1 nat" in n for n in names)
    assert any("control ablation" in n for n in names)
    html = Path(doc["report_path"]).read_text()
    assert "Induction heads of a language model" in html and html.count("data:image/png;base64,") >= 2
    top = s["induction_heads"][0]
    assert f"L{top['layer']}H{top['head']}" in html and "Acceptance checks" in html


@pytest.mark.parametrize(("make", "sets", "message"), [
    (None, [], "is not a folder"),
    ("bert", [], "is a bert model; lm-induction needs a causal LM"),
    ("llama", ["seq_len=40"], "81 tokens per sequence exceed the model's context of 64"),
    ("llama", ["n_ablated=-1"], "n_ablated"),
    ("llama", ["model=smollm2-13m"], "Unknown model 'smollm2-13m'"),
])
def test_cli_bad_input_is_one_line_exit_2_and_creates_nothing(make: str | None, sets: list[str], message: str,
                                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    model = tiny_family_model(tmp_path / "model", make) if make else tmp_path / "missing"
    args = [x for kv in (f"model={model}", *sets) for x in ("--set", kv)]
    r = _cli("run", "lm-induction", *args, "--no-progress", cwd=work, monkeypatch=monkeypatch)
    assert r.exit_code == 2, r.output
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.stderr, r.stderr
    assert list(work.iterdir()) == []  # no store, no run folder


@pytest.mark.slow
def test_smollm2_induction_heads_are_found_and_confirmed(tmp_path: Path) -> None:
    """The real model, on a reduced batch (2 sequences of 30 tokens, 2 control sets): every check passes, and the
    best induction head sits in the middle layers (SmolLM2's are in layers 17-18)."""
    if model_status("smollm2-135m").state != "converted":
        pytest.skip("SmolLM2-135M is not converted (emergelab models convert smollm2-135m)")
    result = api.run_experiment("lm-induction", overrides=["seq_len=30", "n_seqs=2", "control_draws=2",
                                                           "n_ablated=3", "per_head=false", "threads=1"],
                                store=tmp_path / "e.db", progress=False)
    s = result.summary
    assert [c["name"] for c in s["checks"] if not c["passed"]] == []
    assert 15 <= s["induction_heads"][0]["layer"] <= 24 and s["rise"] >= 1.0
    assert s["model"]["n_layers"] == 30 and s["model"]["n_heads"] == 9 and s["model"]["n_kv_heads"] == 3

