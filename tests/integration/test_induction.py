"""A reduced `induction` run (about 20 s): the phase change appears in 2 layers and not in 1, the named
induction heads are confirmed by ablation, and the report is rebuilt from the store alone (device=cpu given
explicitly)."""

import functools
import json
import shutil

import pytest

from emergelab import render_report, run_experiment
from emergelab.registry import experiments
from emergelab.runs.store import RunStore

REDUCED = [
    "seed=0", "device=cpu", "task.vocab_size=64", "task.seq_len=32", "task.segment_min=4", "task.segment_max=8",
    "model.d_model=32", "model.n_heads=2", "train.lr=5e-3", "train.steps=1000", "train.batch_size=64",
    "train.log_every=25", "train.checkpoint_every=500", "analysis.icl_late=28", "analysis.eval_size=256",
]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    store = tmp_path_factory.mktemp("induction") / "e.db"
    return run_experiment("induction", overrides=REDUCED, store=store, progress=False), store


def test_phase_change_in_two_layers_not_in_one(finished):
    result, _ = finished
    s = json.loads((result.run_dir / "summary.json").read_text())
    two, one = s["2L"], s["1L"]
    assert two["phase_change"]["detected"]
    pc = two["phase_change"]
    assert pc["start_step"] < pc["steepest_step"] < pc["end_step"]
    assert not one["phase_change"]["detected"] and one["phase_change"]["start_step"] is None
    assert two["final"]["repeated_loss"] <= 1.0
    assert two["final"]["repeated_loss"] < 0.3 * one["final"]["repeated_loss"]
    assert two["final"]["icl_score"] < one["final"]["icl_score"]
    assert two["induction_heads"] and all(h["layer"] == 1 for h in two["induction_heads"])
    assert any(h["layer"] == 0 for h in two["previous_token_heads"])
    assert one["induction_heads"] == []
    rising = {(h["kind"], h["layer"]) for h in two["heads_rising_in_window"]}
    assert ("prefix_matching", 1) in rising


def test_ablating_induction_heads_breaks_repeated_tokens_only(finished):
    result, _ = finished
    ab = result.summary["2L"]["ablation"]
    rise = ab["ablated_repeated_loss"] - ab["clean_repeated_loss"]
    assert rise >= 1.0
    assert abs(ab["ablated_first_loss"] - ab["clean_first_loss"]) < rise / 4
    assert ab["kind"] == "mean" and len(ab["per_head"]) == 2 * 2


def test_the_control_holds_no_circuit_head_and_its_check_gives_both_numbers(finished):
    result, _ = finished
    s = result.summary["2L"]
    ab, ctl = s["ablation"], s["ablation"]["control"]
    circuit = {(h["layer"], h["head"]) for h in s["induction_heads"] + s["previous_token_heads"]}
    outside = [(layer, head) for layer in range(2) for head in range(2) if (layer, head) not in circuit]
    assert [(h["layer"], h["head"]) for h in ctl["pool"]] == outside  # 2 x 2 heads: never enough for a draw
    assert all((h["layer"], h["head"]) not in circuit for d in ctl["draws"] for h in d["heads"])
    check = next(c for c in result.summary["checks"] if "control ablation" in c["name"])
    rise = ab["ablated_repeated_loss"] - ab["clean_repeated_loss"]
    if outside:
        assert ctl["choice"] in ("same_layers", "other_layers", "fewer_heads") and len(ctl["draws"]) >= 1
        c_rise = ctl["repeated_loss"] - ab["clean_repeated_loss"]
        assert check["passed"] == (c_rise <= rise / 3)
        assert check["detail"].startswith(f"control {c_rise:+.2f} vs induction heads {rise:+.2f} nats")
    else:  # every head is in the circuit: no control, and the check says so instead of passing
        assert ctl["choice"] == "none" and ctl["repeated_loss"] is None and not check["passed"]
        assert check["detail"].startswith("no control: every head is an induction or previous-token head")


def test_store_holds_metrics_provenance_and_artifacts(finished):
    result, store = finished
    with RunStore(store, create=False) as st:
        run = st.get_run(result.run_id)
        assert run.status == "completed" and run.config["train"]["steps"] == 1000 and run.seed == 0
        assert run.config["device"] == "cpu"  # given explicitly, as a user without a GPU may
        steps, values = st.metric_series(run.id, "2L/probe/repeated_loss")
        assert steps == list(range(0, 1001, 25)) and len(values) == 41
        assert len(st.metric_names(run.id, "2L/heads/")) == 4 * 2 * 2  # 4 scores x 2 layers x 2 heads
        kinds = {k for _, k in st.artifacts(run.id)}
        assert kinds == {"config", "summary", "report"}
    assert (result.run_dir / "config.yaml").read_text().startswith("seed: 0")


def test_report_is_rebuilt_from_the_store_alone(finished, chromium_page):
    result, store = finished
    original = result.report_path.read_text()
    shutil.rmtree(result.run_dir / "checkpoints")  # the report must not need the weights
    result.report_path.unlink()
    path = render_report(result.run_id, store=store)
    assert path.read_text() == original

    errors = []
    chromium_page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    chromium_page.on("pageerror", lambda e: errors.append(str(e)))
    chromium_page.goto(path.as_uri())
    chromium_page.wait_for_load_state("load")
    assert errors == []
    widths = chromium_page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
    assert widths and all(w > 0 for w in widths)
    text = chromium_page.inner_text("body")
    assert result.run_id in text and "L1H" in text


def test_sweep_metrics_exist_in_the_summary(finished):
    """The summary values `emergelab sweep` tabulates by default are paths that exist."""
    summary = finished[0].summary

    def exists(path: str) -> bool:
        try:
            functools.reduce(lambda node, key: node[key], path.split("."), summary)
        except KeyError:
            return False
        return True

    assert [m for m in experiments.get("induction").sweep_metrics if not exists(m)] == []
