"""`run_icl_eval` (what `emergelab icl-eval` calls) on a tiny random GPT-2 with a byte-level BPE tokenizer saved to a
temp folder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from emergelab.icl import kshot
from tests.fixtures import hf_models

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def test_run_icl_eval_writes_json_and_csv(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    task = kshot.load_task("sentiment")
    folder = hf_models.byte_bpe_lm(tmp_path / "lm", kshot.task_texts(task), n_layer=2, n_embd=32)
    shots, conds, seeds = [0, 1, 4], list(kshot.CONDITIONS), [0, 1, 2]
    res = kshot.run_icl_eval(folder, "sentiment", shots=shots, conditions=conds, seeds=seeds, out_dir=tmp_path / "o")

    on_disk = json.loads(Path(res["json_path"]).read_text())
    assert on_disk["rows"] == res["rows"] and on_disk["task"] == "sentiment" and on_disk["chance"] == 0.5
    assert [(r["condition"], r["shots"]) for r in res["rows"]] == [(c, k) for c in conds for k in shots]
    n_queries = len(task.examples) - max(shots)
    for r in res["rows"]:
        assert r["n_queries"] == n_queries and len(r["accuracy_by_seed"]) == 3
        assert r["accuracy_min"] <= r["accuracy"] <= r["accuracy_max"]
        assert 0 <= r["accuracy_ci90"][0] <= r["accuracy"] <= r["accuracy_ci90"][1] <= 1
        assert 0 <= r["calibrated_accuracy"] <= 1
    # with no demonstrations gold, random and flipped prompts are the same prompts
    zero = {r["condition"]: r["accuracy_by_seed"] for r in res["rows"] if r["shots"] == 0}
    assert zero["gold"] == zero["random"] == zero["flipped"]

    with open(res["csv_path"], newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(shots) * len(conds)
    assert tuple(table[0]) == kshot.CSV_COLUMNS
    for row, r in zip(table, res["rows"], strict=True):
        assert (row["condition"], int(row["shots"])) == (r["condition"], r["shots"])
        assert abs(float(row["accuracy"]) - r["accuracy"]) < 1e-6

    # the naive path gives the same table
    naive = kshot.run_icl_eval(folder, "sentiment", shots="4,0,1", conditions=",".join(conds), seeds="0,1,2",
                               out_dir=tmp_path / "naive", cached=False)
    assert [r["accuracy_by_seed"] for r in naive["rows"]] == [r["accuracy_by_seed"] for r in res["rows"]]
