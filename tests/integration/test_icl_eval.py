"""icl-eval on a tiny random GPT-2 with a byte-level BPE tokenizer saved to a temp folder: the library function
`run_icl_eval`, and the `icl-eval` experiment (a recorded run: store, artifacts, report, --reanalyze, sweeps)
through the runner and the `emergelab icl-eval` command line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from emergelab import api
from emergelab.icl import kshot
from emergelab.models.hf import load_hf_model
from tests.fixtures import hf_models

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


@pytest.fixture(scope="module")
def bpe_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    texts = [x for n in kshot.builtin_tasks() for x in kshot.task_texts(kshot.load_task(n))]
    return hf_models.byte_bpe_lm(tmp_path_factory.mktemp("bpe-lm"), texts)


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


SMALL = {"task": "continent", "shots": [0, 2, 4], "conditions": ["gold", "flipped"], "seeds": [0, 1], "n_boot": 200,
         "threads": 1}


def _overrides(model: Path | str, **extra: object) -> list[str]:
    return [f"{k}={json.dumps(v)}" for k, v in {"model": str(model), **SMALL, **extra}.items()]


def test_icl_eval_is_a_recorded_run(bpe_folder: Path, tmp_path: Path) -> None:
    store = tmp_path / "e.db"
    result = api.run_experiment("icl-eval", overrides=_overrides(bpe_folder), store=store, progress=False)
    assert result.status == "completed"
    s = result.summary
    # the same numbers as the library function on the same model and prompts
    lm = load_hf_model(bpe_folder)
    direct = kshot.evaluate(lm.model, lm.tokenizer, kshot.load_task("continent"), SMALL["shots"], SMALL["conditions"],
                            SMALL["seeds"], lm.n_ctx, n_boot=200)
    assert [r["accuracy_by_seed"] for r in s["rows"]] == [r["accuracy_by_seed"] for r in direct["rows"]]
    assert s["rows"] == json.loads(json.dumps(direct["rows"]))
    assert s["at_max_shots"]["shots"] == 4 and s["at_max_shots"]["condition"] == "gold"
    assert s["checks"][0]["passed"], s["checks"][0]  # cached prefix = full prompts on the spot check
    # provenance, results table as artifacts, the curves as metrics, a report with the accuracy figure
    info = api.show_run(result.run_id, store=store)
    assert {"results.csv", "results.json", "summary.json", "report.html"} <= {p for p, _ in info["artifacts"]}
    assert info["run"].config["model"] == str(bpe_folder)
    with open(result.run_dir / "results.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == len(SMALL["shots"]) * len(SMALL["conditions"])
    html = result.report_path.read_text()
    assert "Accuracy vs shots" in html and "data:image/png;base64," in html and "flipped" in html
    assert info["n_metrics"] == 4  # {gold, flipped} x {accuracy, calibrated_accuracy} over shots
    # analysis from the store alone
    again = api.reanalyze_run(result.run_id, store=store)
    assert again.summary == s


def test_icl_eval_sweeps_and_the_random_control(tmp_path: Path) -> None:
    res = api.run_sweep("icl-eval", ["bos=auto,always"], overrides=_overrides("random", seeds=[0], shots=[0, 2]),
                        store=tmp_path / "e.db", progress=False)
    assert [r["status"] for r in res.rows] == ["completed", "completed"]
    assert all(r["values"]["at_max_shots.accuracy"] is not None for r in res.rows)
    run_dirs = [api.show_run(r["run_id"], store=tmp_path / "e.db")["run"].dir for r in res.rows]
    assert all((d / "model" / "config.json").is_file() for d in run_dirs)  # the control model, built per run


def _cli(*args: str, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    """`emergelab ...` in this process (typer's runner), from folder `cwd`: a subprocess costs ~15 s of imports."""
    from typer.testing import CliRunner

    from emergelab.cli import app

    monkeypatch.chdir(cwd)
    return CliRunner().invoke(app, list(args))


def test_cli_icl_eval_writes_a_run_and_the_tables(bpe_folder: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    r = _cli("icl-eval", "--model", str(bpe_folder), "--task", "sentiment", "--shots", "0,2", "--seeds", "0",
             "--conditions", "gold,random", "--out", "tables", "--no-progress", cwd=tmp_path, monkeypatch=monkeypatch)
    assert r.exit_code == 0, r.output
    assert "Run " in r.stdout and "completed" in r.stdout and "Report:" in r.stdout and "Results:" in r.stdout
    table = json.loads((tmp_path / "tables" / "sentiment.json").read_text())
    assert table["model"] == str(bpe_folder) and len(table["rows"]) == 4
    assert (tmp_path / "runs" / "emergelab.db").is_file()  # recorded in the default store


@pytest.mark.parametrize(("args", "message"), [
    (["--shots", "0,two"], "shots must be a comma-separated list of int, got '0,two'"),
    (["--conditions", "flip"], "unknown condition 'flip'"),
    (["--shots", "0,500"], "500 shots leave no query"),
    (["--bos", "yes"], "must be one of auto, always, never"),
])
def test_cli_icl_eval_bad_input_is_one_line_and_creates_nothing(bpe_folder: Path, tmp_path: Path, args: list[str],
                                                                 message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    r = _cli("icl-eval", "--model", str(bpe_folder), "--task", "sentiment", *args, cwd=tmp_path,
             monkeypatch=monkeypatch)
    assert r.exit_code == 2, r.output
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_icl_eval_corrupt_weights_or_non_utf8_task_is_one_line(bpe_folder: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    bad_model = tmp_path / "bad-model"
    shutil.copytree(bpe_folder, bad_model)
    weights = bad_model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])  # truncated
    (tmp_path / "task.yaml").write_bytes(b"name: t\n# \xff\n")
    cases = ((["--model", str(bad_model), "--task", "sentiment"], "bad-model"),
             (["--model", str(bpe_folder), "--task", str(tmp_path / "task.yaml")], "is not UTF-8 text"))
    for args, message in cases:
        r = _cli("icl-eval", *args, "--no-progress", cwd=tmp_path, monkeypatch=monkeypatch)
        assert r.exit_code == 2, r.output
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad-model", "task.yaml"]  # no store, no run
