"""`vae`: a variational autoencoder of the 8x8 digits (the source text's VAE: reparameterization, reconstruction +
KL loss), trained through the shared loop and measured, not eyeballed.

An MLP VAE (`generative.vae.VAE`, Bernoulli decoder) on scikit-learn's 1,797 digits with pixels / 16 in [0, 1],
a stratified split (seeded); loss = recon + beta * KL, beta warmed up linearly from 0 over `train.kl_warmup`
of the updates. Over training, the held-out ELBO (at beta = 1, with a fixed noise draw) and its two terms.
`analyze` works from the final checkpoint alone: a digits classifier (`generative.quality.DigitsClassifier`)
trained on the real training images scores reconstructions of held-out images (accuracy of their true class)
and prior samples (confidence, class coverage, small-scale FID against held-out images with the real-vs-real
floor, k-NN precision / recall); it stores the pictures the report draws.

Store: metrics test/{neg_elbo,recon,kl} and train/{loss,lr} per logged epoch; results trained, wall_seconds,
"gallery" (reconstructions, samples, latent map and traversal) and "summary".

Example:
    >>> result = run_experiment("vae", overrides=["train.epochs=50"])
    >>> result.summary["recon_accuracy"], result.summary["samples"]["fid"], result.summary["samples"]["fid_floor"]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.stats import norm
from sklearn.model_selection import train_test_split

from ..generative.quality import DigitsClassifier, sample_quality
from ..generative.vae import VAE
from ..report.vae import render_vae_report
from ..runs.context import RunContext
from ..runs.store import Run, RunStore
from ..tasks import digits
from ..train.loop import TrainConfig
from . import kit
from .configs.vae import N_PIXELS, VAEConfig

PIXEL_MAX = 16.0  # the bundled digits' pixels are 0..16
TRAVERSAL = 15  # the 2-D latent traversal grid is TRAVERSAL x TRAVERSAL decoded points
RECON_TARGET = 0.90  # the target: share of held-out reconstructions classified as their true class
SHOWN_PER_CLASS = 2  # held-out images per class in the report's reconstruction figure
SHOWN_SAMPLES = 100  # prior samples drawn in the report


# --- build -------------------------------------------------------------------------------------------
def data(cfg: VAEConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, X_test (n, 64) float32 in [0, 1], y_train, y_test (n,) int64): a stratified split by `seed`."""
    task = digits.load_digits_task()
    X = (task.X / PIXEL_MAX).astype(np.float32)
    Xtr, Xte, ytr, yte = train_test_split(X, task.y, test_size=cfg.test_size, stratify=task.y,
                                          random_state=cfg.seed)
    return Xtr, Xte, ytr, yte


def make_model(cfg: VAEConfig) -> VAE:
    with torch.random.fork_rng(devices=[]):  # the init is seeded by the run's seed, global state left alone
        torch.manual_seed(cfg.seed)
        return VAE(N_PIXELS, cfg.model.latent_dim, cfg.model.hidden)


def train_config(cfg: VAEConfig) -> tuple[TrainConfig, int]:
    """(loop config, updates per epoch): logs every `log_every_epochs`, a checkpoint every 5 logs and at the end."""
    t, per_epoch = cfg.train, cfg.steps_per_epoch()
    steps = t.epochs * per_epoch
    log_every = per_epoch * t.log_every_epochs
    return TrainConfig(steps=steps, batch_size=t.batch_size, lr=t.lr, weight_decay=t.weight_decay,
                       warmup_steps=min(100, steps // 10), schedule="constant", grad_clip=5.0, log_every=log_every,
                       checkpoint_every=log_every * 5, keep_checkpoints=1), per_epoch


def beta_at(cfg: VAEConfig, step: int, steps: int) -> float:
    """The KL weight of update `step`: beta x min(1, step / warm-up updates)."""
    warm = cfg.train.kl_warmup * steps
    return cfg.train.beta * (min(1.0, step / warm) if warm > 0 else 1.0)


def classifier(cfg: VAEConfig, Xtr: np.ndarray, ytr: np.ndarray) -> DigitsClassifier:
    return DigitsClassifier(seed=cfg.seed).fit(Xtr, ytr)


# --- train -------------------------------------------------------------------------------------------
@torch.no_grad()
def heldout_terms(model: VAE, x: torch.Tensor, eps: torch.Tensor) -> dict[str, float]:
    """Mean held-out -ELBO (beta = 1) and its two terms, nats per image."""
    model.eval()
    t = model.terms(x, eps)
    model.train()
    recon, kl = t["recon"].mean().item(), t["kl"].mean().item()
    return {"neg_elbo": recon + kl, "recon": recon, "kl": kl}


def train_vae(cfg: VAEConfig, ctx: RunContext, resume: bool = False) -> None:
    Xtr, Xte, ytr, _ = data(cfg)
    tcfg, per_epoch = train_config(cfg)
    epochs = digits.epoch_batches(torch.from_numpy(Xtr), torch.from_numpy(ytr), cfg.train.batch_size, 0.0, cfg.seed)
    latent = cfg.model.latent_dim

    def batch_fn(step: int, g: torch.Generator):
        x, _ = epochs(step, g)
        eps = torch.randn(len(x), latent, generator=g)  # (B, latent): the reparameterization noise of this step
        return x, eps, torch.tensor(beta_at(cfg, step, tcfg.steps))

    def loss_fn(model: VAE, batch) -> torch.Tensor:
        x, eps, beta = batch
        t = model.terms(x, eps)
        return (t["recon"] + beta * t["kl"]).mean()

    x_test = torch.from_numpy(Xte)
    eps_test = torch.randn(len(Xte), latent, generator=kit.generator(kit.probe_seed(cfg.seed)))

    def measure(state) -> dict[str, float]:
        dev = next(state.model.parameters()).device
        return {f"test/{k}": v for k, v in heldout_terms(state.model, x_test.to(dev), eps_test.to(dev)).items()}

    probe = kit.ProbeCallback(ctx, measure, step_of=lambda s: s // per_epoch)
    kit.train_timed(ctx, make_model(cfg), loss_fn, batch_fn, tcfg, seed=cfg.seed, resume=resume,
                    callbacks=[probe], device=cfg.device)


# --- analysis (store and final checkpoint only) ------------------------------------------------------
def _images(x: np.ndarray) -> list[list[float]]:
    return np.round(np.asarray(x, dtype=float), 3).tolist()


def gallery(cfg: VAEConfig, model: VAE, Xte: np.ndarray, yte: np.ndarray, recon: np.ndarray, samples: np.ndarray,
            clf: DigitsClassifier) -> dict[str, Any]:
    """What the report draws: held-out images and their reconstructions (SHOWN_PER_CLASS per class), prior
    samples with their predicted class, the held-out latent means by class (PCA to 2-D when latent_dim > 2) and,
    for latent_dim = 2, the decoded traversal grid over the prior's quantiles."""
    shown = np.concatenate([np.flatnonzero(yte == c)[:SHOWN_PER_CLASS] for c in range(10)])
    with torch.no_grad():
        mu = model.encode(torch.from_numpy(Xte))[0].numpy().astype(float)
    projection = "latent"
    if mu.shape[1] > 2:
        from sklearn.decomposition import PCA

        mu, projection = PCA(2, random_state=cfg.seed).fit_transform(mu), "PCA of the latent means"
    out: dict[str, Any] = {
        "originals": _images(Xte[shown]), "original_labels": yte[shown].tolist(),
        "reconstructions": _images(recon[shown]), "recon_pred": clf.predict(recon[shown]).tolist(),
        "samples": _images(samples[:SHOWN_SAMPLES]), "sample_pred": clf.predict(samples[:SHOWN_SAMPLES]).tolist(),
        "latent": {"x": np.round(mu[:, 0], 4).tolist(), "y": np.round(mu[:, 1], 4).tolist(), "labels": yte.tolist(),
                   "projection": projection},
        "traversal": None,
    }
    if cfg.model.latent_dim == 2:
        q = norm.ppf(np.linspace(0.05, 0.95, TRAVERSAL))  # evenly spaced in prior probability
        zz = np.array([[a, b] for b in q[::-1] for a in q], dtype=np.float32)  # rows top to bottom: z2 falls
        with torch.no_grad():
            grid = model.decode(torch.from_numpy(zz)).numpy()
        out["traversal"] = {"n": TRAVERSAL, "z": np.round(q, 4).tolist(), "images": _images(grid)}
    return out


def analyze(store: RunStore, run: Run) -> dict[str, Any]:
    view = kit.FinishedRun(store, run, VAEConfig)
    cfg = view.cfg
    Xtr, Xte, ytr, yte = data(cfg)
    model = kit.final_checkpoint(run, make_model(cfg), train_config(cfg)[0].steps).cpu()
    clf = classifier(cfg, Xtr, ytr)
    with torch.no_grad():
        recon = model(torch.from_numpy(Xte)).numpy()
        z = torch.randn(cfg.n_samples, cfg.model.latent_dim, generator=kit.generator(kit.eval_seed(cfg.seed)))
        samples = model.decode(z).numpy()
    recon_accuracy = clf.score(recon, yte)
    quality = sample_quality(clf, Xte, samples, k=cfg.k, seed=cfg.seed)
    store.put_result(run.id, "gallery", gallery(cfg, model, Xte, yte, recon, samples, clf))

    curves = view.metrics("test/")
    first = {k: round(curves[f"test/{k}"][1][0], 4) for k in ("neg_elbo", "recon", "kl")}
    last = {k: round(curves[f"test/{k}"][1][-1], 4) for k in ("neg_elbo", "recon", "kl")}
    checks = kit.Checks()
    checks.add("held-out ELBO improves over training", last["neg_elbo"] < first["neg_elbo"],
               f"-ELBO {first['neg_elbo']:.2f} -> {last['neg_elbo']:.2f} nats per image (epoch 0 -> "
               f"{cfg.train.epochs})")
    checks.add(f"the digits classifier recognises >= {RECON_TARGET:.0%} of held-out reconstructions",
               recon_accuracy >= RECON_TARGET, f"{recon_accuracy:.1%} of {len(yte)} held-out images "
               f"(the classifier on the originals: {clf.score(Xte, yte):.1%})")
    return {"heldout_first": first, "heldout_last": last, "recon_accuracy": round(recon_accuracy, 6),
            "classifier_accuracy": round(clf.score(Xte, yte), 6), "samples": quality,
            "wall_seconds": round(view.result("wall_seconds", 0.0), 2), "checks": checks.rows}


def report_data(store: RunStore, run: Run) -> dict[str, Any]:
    """Everything the report shows, read from the store alone."""
    view = kit.FinishedRun(store, run, VAEConfig)
    return view.report_data(curves=view.curves(), gallery=view.require("gallery"),
                            wall_seconds=view.result("wall_seconds"))


EXPERIMENT = kit.register(
    "vae",
    VAEConfig, train_vae, analyze, report_data=report_data, render=render_vae_report,
    sweep_metrics=("heldout_last.neg_elbo", "recon_accuracy", "samples.fid"),
    tiny=("train.epochs=4", "train.log_every_epochs=2"),
    summary_paths=lambda cfg: cfg.summary_paths())
