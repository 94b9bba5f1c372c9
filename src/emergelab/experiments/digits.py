"""`digits`: the source text's SOM -> RBF -> attention -> softmax pipeline, made to work and explained.

A self-organizing map is trained unsupervised on the training images; its codebook becomes the
centers of a Gaussian RBF layer; every map unit is a token (its normalized activation and a learned
unit embedding) that attention pooling weighs; a linear softmax reads the pooled vector. Everything
after the SOM is trained jointly, the RBF centers included (fine-tuning the codebook). Baselines on the
same split and preprocessing: logistic regression, an RBF-kernel SVM and the RBF network alone.

Why the model decided: the attention weights name the map units it used, and each unit is a
prototype image. The report shows them per test image, per class, and for the mistakes.

Results in the store (per split seed): "split/{seed}" metrics; "explain" (first split) for the report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.calibration import CalibratedClassifierCV
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import TSNE
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from torch import nn

from ..config import from_dict, invalid
from ..errors import DataError
from ..models.attention_pool import AttentionPooling
from ..models.rbf import RBFClassifier, RBFLayer
from ..models.som import SOM
from ..registry import experiments
from ..runs.context import RunContext
from ..runs.store import Run, RunStore
from ..tasks.digits import load_digits_data
from ..train.checkpoint import save_model
from .base import Experiment

METRICS = ("test_accuracy", "macro_recall", "macro_f1", "roc_auc_ovr")
BASELINES = ("logistic_regression", "svm_rbf", "rbf_network")


@dataclass
class DigitsDataConfig:
    path: str | None = None  # folder of MNIST-style IDX files; None = scikit-learn's bundled 8x8 digits
    test_size: float = 0.25  # stratified hold-out fraction
    clip: float = 3.0  # standardized pixels clipped at +-clip: near-constant border pixels explode otherwise
    max_samples: int = 0  # 0 = all; else a stratified subsample (large IDX sets)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if not 0 < self.test_size < 1:
            invalid("test_size", "must be in (0, 1)")
        if self.clip <= 0:
            invalid("clip", "must be > 0")
        if self.max_samples < 0:
            invalid("max_samples", "must be >= 0 (0 = all)")


@dataclass
class DigitsSOMConfig:
    rows: int = 10
    cols: int = 10
    epochs: int = 20  # batch-SOM epochs
    sigma_end: float = 0.5  # final neighbourhood radius: lower = lower QE, higher TE

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for key in ("rows", "cols", "epochs"):
            if getattr(self, key) < 1:
                invalid(key, "must be >= 1")
        if self.rows * self.cols < 2:
            invalid("cols", "the map needs at least 2 units")
        if self.sigma_end <= 0:
            invalid("sigma_end", "must be > 0")


@dataclass
class DigitsModelConfig:
    unit_dim: int = 16  # learned embedding of each map unit
    n_queries: int = 4  # attention queries (each pools the units its own way)
    fine_tune_centers: bool = True  # train the SOM codebook as RBF centers (+1.5 to 3 points)
    epochs: int = 100
    batch_size: int = 64
    lr: float = 3e-3  # peak of a one-cycle schedule
    weight_decay: float = 1e-4
    input_noise: float = 0.5  # Gaussian noise on standardized inputs during training (a strong regularizer here)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for key in ("unit_dim", "n_queries", "epochs", "batch_size"):
            if getattr(self, key) < 1:
                invalid(key, "must be >= 1")
        if self.lr <= 0:
            invalid("lr", "must be > 0")
        if self.weight_decay < 0 or self.input_noise < 0:
            invalid("input_noise" if self.input_noise < 0 else "weight_decay", "must be >= 0")


@dataclass
class DigitsConfig:
    seed: int = 0  # model init and training order
    split_seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # results are averaged over these splits
    threads: int = 1  # torch threads (0 = torch's default); batches of 64 x 100 units run fastest on one
    data: DigitsDataConfig = field(default_factory=DigitsDataConfig)
    som: DigitsSOMConfig = field(default_factory=DigitsSOMConfig)
    model: DigitsModelConfig = field(default_factory=DigitsModelConfig)
    baselines: bool = True  # logistic regression, RBF-SVM and the RBF network alone on the same split
    explain_samples: int = 8  # correctly classified test images explained in the report (plus every mistake)
    tsne_perplexity: float = 30.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if not self.split_seeds:
            invalid("split_seeds", "must list at least one seed")
        if self.seed < 0 or any(s < 0 for s in self.split_seeds):
            invalid("seed", "seeds must be >= 0")
        if self.threads < 0:
            invalid("threads", "must be >= 0")
        if self.explain_samples < 0:
            invalid("explain_samples", "must be >= 0")
        if self.tsne_perplexity <= 0:
            invalid("tsne_perplexity", "must be > 0")


class SOMAttentionNet(nn.Module):
    """x (B, d) -> logits (B, C), attention alpha (B, n_queries, K) over the K map units.

    Tokens: t_j = [a_j, a_j * e_j] with a_j the normalized RBF activation of unit j (sums to K over
    units) and e_j a learned unit embedding; attention pooling weighs the units; a linear layer reads
    the pooled vectors of all queries.
    """

    def __init__(self, centers: np.ndarray, width: float, n_classes: int, unit_dim: int, n_queries: int,
                 learn_centers: bool, seed: int):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        K = centers.shape[0]
        self.rbf = RBFLayer(centers, widths=width, learnable=learn_centers)
        self.unit_embed = nn.Parameter(torch.randn(K, unit_dim, generator=g) * 0.5)
        with torch.random.fork_rng():  # the pooling/linear layers' default init draws from the global RNG
            torch.manual_seed(seed)
            self.pool = AttentionPooling(unit_dim + 1, n_queries=n_queries)
            self.head = nn.Linear(n_queries * (unit_dim + 1), n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        phi = self.rbf(x)  # (B, K)
        a = phi / phi.sum(-1, keepdim=True).clamp_min(1e-30) * phi.shape[-1]  # normalized RBF, mean 1
        tokens = torch.cat([a[..., None], a[..., None] * self.unit_embed], dim=-1)  # (B, K, 1 + E)
        pooled, alpha = self.pool(tokens)  # (B, Q, 1 + E), (B, Q, K) — or without the Q axis when Q == 1
        if alpha.ndim == 2:
            pooled, alpha = pooled[:, None], alpha[:, None]
        flat = pooled.reshape(len(x), -1)
        return self.head(flat), alpha, {"rbf": a, "pooled": flat}


def metrics_of(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    pred = proba.argmax(1)
    return {
        "test_accuracy": float(accuracy_score(y_true, pred)),
        "macro_recall": float(recall_score(y_true, pred, average="macro")),
        "macro_f1": float(f1_score(y_true, pred, average="macro")),
        "roc_auc_ovr": float(roc_auc_score(y_true, proba, multi_class="ovr", labels=np.arange(proba.shape[1]))),
    }


def prepare_split(X: np.ndarray, y: np.ndarray, cfg: DigitsConfig, split_seed: int):
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=cfg.data.test_size, stratify=y, random_state=split_seed)
    scaler = StandardScaler().fit(Xtr)
    clip = cfg.data.clip
    return (np.clip(scaler.transform(Xtr), -clip, clip).astype(np.float32),
            np.clip(scaler.transform(Xte), -clip, clip).astype(np.float32), ytr, yte, Xte, scaler)


def train_net(Xtr: np.ndarray, ytr: np.ndarray, som: SOM, n_classes: int, cfg: DigitsConfig) -> SOMAttentionNet:
    m = cfg.model
    Xt, yt = torch.from_numpy(Xtr), torch.from_numpy(ytr)
    centers = torch.from_numpy(som.codebook_)
    # width: the median distance of a training image to its best-matching unit (then learned per unit)
    width = float(torch.cdist(Xt, centers).min(1).values.median())
    net = SOMAttentionNet(som.codebook_, width, n_classes, m.unit_dim, m.n_queries, m.fine_tune_centers, cfg.seed)
    opt = torch.optim.AdamW(net.parameters(), lr=m.lr, weight_decay=m.weight_decay)
    steps_per_epoch = (len(Xt) + m.batch_size - 1) // m.batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=m.lr, total_steps=m.epochs * steps_per_epoch)
    g = torch.Generator().manual_seed(cfg.seed)
    net.train()
    for _ in range(m.epochs):
        order = torch.randperm(len(Xt), generator=g)
        for i in range(0, len(Xt), m.batch_size):
            idx = order[i: i + m.batch_size]
            xb = Xt[idx] + m.input_noise * torch.randn(len(idx), Xt.shape[1], generator=g)
            loss = F.cross_entropy(net(xb)[0], yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    return net


def baselines(Xtr, ytr, Xte, yte, som: SOM, seed: int) -> dict[str, dict[str, float]]:
    out = {}
    lr = LogisticRegression(max_iter=3000).fit(Xtr, ytr)
    out["logistic_regression"] = metrics_of(yte, lr.predict_proba(Xte))
    # probabilities for ROC-AUC by calibration, as scikit-learn recommends over SVC(probability=True)
    svm = CalibratedClassifierCV(SVC(kernel="rbf", C=10.0, gamma="scale", random_state=seed), ensemble=False)
    out["svm_rbf"] = metrics_of(yte, svm.fit(Xtr, ytr).predict_proba(Xte))
    rbf = RBFClassifier(centers=som.codebook_, width="nearest", solver="lstsq", alpha=1e-3, seed=seed)
    out["rbf_network"] = metrics_of(yte, rbf.fit(Xtr, ytr).predict_proba(Xte))
    return out


def _embed2d(Z: np.ndarray, seed: int, perplexity: float) -> dict[str, list]:
    pca = PCA(n_components=2, random_state=seed).fit_transform(Z)
    tsne = TSNE(n_components=2, perplexity=min(perplexity, (len(Z) - 1) / 3), init="pca",
                random_state=seed).fit_transform(Z)
    return {"pca": np.round(pca, 4).tolist(), "tsne": np.round(tsne, 4).tolist()}


@torch.no_grad()
def explain(net: SOMAttentionNet, som: SOM, scaler: StandardScaler, Xtr, ytr, Xte, yte, Xte_raw,
            classes: list[str], shape: tuple[int, int], cfg: DigitsConfig) -> dict[str, Any]:
    logits, alpha, inner = net(torch.from_numpy(Xte))
    proba = logits.softmax(-1).numpy()
    pred = proba.argmax(1)
    weight = alpha.mean(1).numpy()  # (n, K): attention per unit, averaged over queries
    lo, hi = float(Xte_raw.min()), float(Xte_raw.max())

    def to_pixels(Z: np.ndarray) -> list:
        return np.round(np.clip(scaler.inverse_transform(Z), lo, hi), 3).tolist()

    correct = [i for i in range(len(yte)) if pred[i] == yte[i]][: cfg.explain_samples]
    wrong = [i for i in range(len(yte)) if pred[i] != yte[i]]
    samples = []
    for i in correct + wrong:
        top = np.argsort(-weight[i])[:5]
        samples.append({"index": int(i), "image": np.round(Xte_raw[i], 3).tolist(), "label": int(yte[i]),
                        "prediction": int(pred[i]), "probabilities": np.round(proba[i], 4).tolist(),
                        "top_units": [{"unit": int(u), "weight": round(float(weight[i, u]), 4)} for u in top]})
    n_classes = len(classes)
    importance = np.stack([weight[yte == c].mean(0) if (yte == c).any() else np.zeros(weight.shape[1])
                           for c in range(n_classes)])
    return {
        "image_shape": list(shape),
        "classes": classes,
        "som_shape": [cfg.som.rows, cfg.som.cols],
        "u_matrix": np.round(som.u_matrix(), 4).tolist(),
        "hit_map": som.hit_map(Xtr, ytr).astype(int).tolist(),
        "prototypes": to_pixels(net.rbf.centers.detach().numpy()),
        "som_prototypes": to_pixels(som.codebook_),
        "confusion": confusion_matrix(yte, pred, labels=np.arange(n_classes)).tolist(),
        "embeddings": {
            "input": _embed2d(Xte, cfg.seed, cfg.tsne_perplexity),
            "rbf": _embed2d(inner["rbf"].numpy(), cfg.seed, cfg.tsne_perplexity),
            "pooled": _embed2d(inner["pooled"].numpy(), cfg.seed, cfg.tsne_perplexity),
        },
        "test_labels": yte.astype(int).tolist(),
        "test_predictions": pred.astype(int).tolist(),
        "class_importance": np.round(importance, 5).tolist(),
        "samples": samples,
    }


def check_data(cfg: DigitsConfig) -> None:
    """Read the data before a run exists: a missing, empty or corrupt file leaves nothing behind."""
    X, y, _ = load_digits_data(cfg.data.path)
    if len(np.unique(y)) < 2:
        raise DataError(f"The digits data at '{cfg.data.path}' holds a single class")
    if np.bincount(np.unique(y, return_inverse=True)[1]).min() < 2:
        raise DataError("Every class needs at least 2 examples for a stratified split")


def run_digits(cfg: DigitsConfig, ctx: RunContext, resume: bool = False) -> None:
    t0 = time.perf_counter()
    X, y, shape = load_digits_data(cfg.data.path)
    if cfg.data.max_samples and cfg.data.max_samples < len(X):
        X, _, y, _ = train_test_split(X, y, train_size=cfg.data.max_samples, stratify=y, random_state=cfg.seed)
    labels = np.unique(y)
    y = np.searchsorted(labels, y)  # class indices 0..C-1
    classes = [str(v) for v in labels]
    with ctx.progress:
        bar = ctx.progress.add_task(f"{ctx.id} splits", total=len(cfg.split_seeds), loss="-")
        for n_done, split_seed in enumerate(cfg.split_seeds):
            if resume and ctx.store.get_result(ctx.id, f"split/{split_seed}") is not None:
                ctx.progress.update(bar, completed=n_done + 1)
                continue  # finished splits are kept; an interrupted one is redone from scratch
            Xtr, Xte, ytr, yte, Xte_raw, scaler = prepare_split(X, y, cfg, split_seed)
            som = SOM(cfg.som.rows, cfg.som.cols, n_iter=cfg.som.epochs, sigma_end=cfg.som.sigma_end,
                      seed=cfg.seed + split_seed).fit(Xtr)
            net = train_net(Xtr, ytr, som, len(classes), cfg)
            with torch.no_grad():
                proba = net(torch.from_numpy(Xte))[0].softmax(-1).numpy()
            result = {
                "seed": split_seed,
                "model": metrics_of(yte, proba),
                "som": {"quantization_error": som.quantization_error(Xtr),
                        "topographic_error": som.topographic_error(Xtr)},
                "baselines": baselines(Xtr, ytr, Xte, yte, som, cfg.seed) if cfg.baselines else {},
            }
            if n_done == 0:
                som.save(ctx.dir / "som.safetensors")
                save_model(ctx.dir / "model.safetensors", net)
                ctx.store.put_result(ctx.id, "explain",
                                     explain(net, som, scaler, Xtr, ytr, Xte, yte, Xte_raw, classes, shape, cfg))
            ctx.store.put_result(ctx.id, f"split/{split_seed}", result)
            ctx.progress.update(bar, completed=n_done + 1, loss=f"acc {result['model']['test_accuracy']:.3f}")
    before = ctx.store.get_result(ctx.id, "wall_seconds", 0.0)
    ctx.store.put_result(ctx.id, "wall_seconds", before + time.perf_counter() - t0)


def _mean_std(rows: list[dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    mean = {k: round(float(np.mean([r[k] for r in rows])), 6) for k in METRICS}
    std = {k: round(float(np.std([r[k] for r in rows])), 6) for k in METRICS}
    return mean, std


def analyze(store: RunStore, run: Run) -> dict[str, Any]:
    cfg = from_dict(DigitsConfig, run.config)
    per_split = [store.get_result(run.id, f"split/{s}") for s in cfg.split_seeds]
    mean, std = _mean_std([p["model"] for p in per_split])
    summary: dict[str, Any] = {**mean, "std": std}
    summary["som"] = {k: round(float(np.mean([p["som"][k] for p in per_split])), 6)
                      for k in ("quantization_error", "topographic_error")}
    summary["baselines"] = {}
    if cfg.baselines:
        summary["baselines"] = {b: _mean_std([p["baselines"][b] for p in per_split])[0] for b in BASELINES}
    summary["per_split"] = per_split
    summary["wall_seconds"] = round(store.get_result(run.id, "wall_seconds", 0.0), 2)
    checks = [
        {"name": "test accuracy >= 0.975 (source text claims > 0.90)", "passed": mean["test_accuracy"] >= 0.975,
         "detail": f"{mean['test_accuracy']:.4f} +- {std['test_accuracy']:.4f} over {len(per_split)} splits"},
        {"name": "macro ROC-AUC >= 0.998", "passed": mean["roc_auc_ovr"] >= 0.998,
         "detail": f"{mean['roc_auc_ovr']:.5f}"},
    ]
    if cfg.baselines:
        svm = summary["baselines"]["svm_rbf"]["test_accuracy"]
        checks.append({"name": "within 1.0 point of the RBF-SVM", "passed": mean["test_accuracy"] >= svm - 0.01,
                       "detail": f"ours {mean['test_accuracy']:.4f} vs SVM {svm:.4f}"})
    summary["checks"] = checks
    return summary


def report(store: RunStore, run: Run) -> str:
    from ..report.digits import render_digits_report

    data = {
        "run": run.info(),
        "config": run.config,
        "summary": store.get_result(run.id, "summary"),
        "explain": store.get_result(run.id, "explain"),
    }
    return render_digits_report(data)


EXPERIMENT = experiments.register(
    "digits",
    "SOM -> RBF -> attention -> softmax on handwritten digits, explained by prototypes (source text, ch. 3-5)",
)(Experiment("digits", DigitsConfig, run_digits, analyze, report, check=check_data,
              sweep_metrics=("test_accuracy", "macro_f1", "roc_auc_ovr")))
