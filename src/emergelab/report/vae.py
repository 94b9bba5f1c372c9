"""Self-contained HTML report for the ``vae`` experiment (a variational autoencoder of the 8x8 digits).

Sections: the acceptance checks; the held-out ELBO and its two terms over training; reconstructions of held-out
images; prior samples and their quality (classifier confidence, class coverage, small-scale FID with its
real-vs-real floor, precision / recall); the latent map by class and, for a 2-D latent, the traversal grid;
the config and provenance.

Input is a plain ``dict`` built from the run store by ``experiments.vae.report_data``: ``run``, ``config``,
``summary`` ({heldout_first, heldout_last, recon_accuracy, classifier_accuracy, samples, wall_seconds, checks}),
``checks``, ``curves`` ({metric name: {steps, values}}, steps in epochs), ``gallery`` (originals,
reconstructions, samples as lists of 64 pixels in [0, 1], their labels / predicted classes, latent {x, y,
labels, projection}, traversal {n, z, images} or None) and ``wall_seconds``. Nothing is evaluated here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from markupsafe import Markup, escape

from emergelab.report import figures as F
from emergelab.report.format import fmt
from emergelab.report.html import Section, checks_section, render_fragment, render_run_page, run_meta, wall_rows

__all__ = ["render_vae_report"]

TITLE = "Variational autoencoder of handwritten digits"
SUBTITLE = ("An MLP VAE on scikit-learn's 8x8 digits (Bernoulli decoder, loss = reconstruction + beta x KL); its "
            "reconstructions and prior samples scored by a digits classifier trained on real images.")
SIDE = 8  # pixels per image side
CLASS_CMAP = "tab10"


# --- figures ----------------------------------------------------------------------------------------------
def _curves_figure(curves: Mapping[str, Mapping[str, list]]) -> str:
    def curve(name: str, label: str, color: str) -> F.Curve:
        c = curves.get(name) or {"steps": [], "values": []}
        return F.Curve(c["steps"], c["values"], label, color)

    panels = [
        F.Panel("held-out -ELBO (nats per image)", [curve("test/neg_elbo", "held-out -ELBO", F.MODEL_COLORS[1]),
                                                    curve("train/loss", "train loss (beta-weighted)",
                                                          F.TRAIN_COLOR)], xlabel="epoch"),
        F.Panel("reconstruction term -log p(x|z)", [curve("test/recon", "held-out", F.MODEL_COLORS[0])],
                xlabel="epoch"),
        F.Panel("KL(q(z|x) || p(z))", [curve("test/kl", "held-out", F.MODEL_COLORS[2])], xlabel="epoch"),
    ]
    return F.curve_panels(panels, figsize=(11, 3.1))


def _image_grid(images: Sequence[Sequence[float]], ncols: int, titles: Sequence[str] | None = None,
                title_colors: Sequence[str] | None = None, cell: float = 0.62) -> str:
    """Images (n, 64) in [0, 1] drawn gray (ink dark), `ncols` per row, an optional small title above each."""
    n = len(images)
    nrows = max(1, -(-n // ncols))
    with F.report_style():
        fig, axes = F.new_figure(nrows, ncols, figsize=(cell * ncols, (cell + (0.18 if titles else 0)) * nrows))
        for i, ax in enumerate(axes.flat):
            ax.set_axis_off()
            if i >= n:
                continue
            ax.imshow(np.asarray(images[i], float).reshape(SIDE, SIDE), cmap="gray_r", vmin=0, vmax=1,
                      interpolation="nearest")
            if titles:
                ax.set_title(titles[i], fontsize=7, pad=1.5, color=(title_colors or ["#212529"] * n)[i])
        return F.fig_to_data_uri(fig)


def _recon_figure(g: Mapping[str, Any]) -> str:
    """Two rows per block: held-out originals (true class above), their reconstructions (predicted class above)."""
    orig, recon = g["originals"], g["reconstructions"]
    labels, pred = g["original_labels"], g["recon_pred"]
    images, titles, colors = [], [], []
    ncols = 10
    for start in range(0, len(orig), ncols):
        block = range(start, min(start + ncols, len(orig)))
        images += [orig[i] for i in block] + [recon[i] for i in block]
        titles += [f"true {labels[i]}" for i in block] + [f"read {pred[i]}" for i in block]
        colors += ["#495057" for _ in block] + ["#2b8a3e" if pred[i] == labels[i] else "#c92a2a" for i in block]
    return _image_grid(images, ncols, titles, colors)


def _coverage_figure(samples: Mapping[str, Any]) -> str:
    hist = list((samples.get("coverage") or {}).get("histogram") or [])
    with F.report_style():
        fig, axes = F.new_figure(1, 1, figsize=(4.6, 2.6))
        ax = axes[0, 0]
        if hist:
            ax.bar(range(len(hist)), hist, color=F.MODEL_COLORS[1])
            ax.axhline(sum(hist) / len(hist), color="#868e96", ls="--", lw=0.9, label="uniform")
            ax.set_xticks(range(len(hist)))
            ax.legend(frameon=False, fontsize=7.5)
        else:
            F.no_data(ax)
        ax.set_xlabel("class the classifier reads")
        ax.set_ylabel("prior samples")
        ax.set_title("class coverage of the samples")
        return F.fig_to_data_uri(fig)


def _latent_figure(latent: Mapping[str, Any]) -> str:
    import matplotlib as mpl

    cmap = mpl.colormaps[CLASS_CMAP]
    x, y, labels = (np.asarray(latent.get(k) or [], float) for k in ("x", "y", "labels"))
    with F.report_style():
        fig, axes = F.new_figure(1, 1, figsize=(5.2, 4.4))
        ax = axes[0, 0]
        for c in range(10):
            m = labels == c
            ax.scatter(x[m], y[m], s=9, color=cmap(c), label=str(c), alpha=0.85, linewidths=0)
        ax.legend(frameon=False, fontsize=7, ncol=2, title="class", title_fontsize=7.5, loc="best",
                  markerscale=1.6)
        proj = latent.get("projection") or "latent"
        ax.set_xlabel("z1" if proj == "latent" else "PC 1")
        ax.set_ylabel("z2" if proj == "latent" else "PC 2")
        ax.set_title("held-out images' posterior means" + ("" if proj == "latent" else f" ({proj})"))
        return F.fig_to_data_uri(fig)


def _traversal_figure(t: Mapping[str, Any]) -> str:
    n = int(t["n"])
    imgs = np.asarray(t["images"], float).reshape(n, n, SIDE, SIDE)
    mosaic = np.ones((n * (SIDE + 1) - 1, n * (SIDE + 1) - 1))
    for r in range(n):
        for c in range(n):
            mosaic[r * (SIDE + 1): r * (SIDE + 1) + SIDE, c * (SIDE + 1): c * (SIDE + 1) + SIDE] = 1 - imgs[r, c]
    z = list(t["z"])
    with F.report_style():
        fig, axes = F.new_figure(1, 1, figsize=(5.2, 5.2))
        ax = axes[0, 0]
        ax.imshow(mosaic, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ticks = [i * (SIDE + 1) + SIDE / 2 - 0.5 for i in (0, n // 2, n - 1)]
        ax.set_xticks(ticks, [fmt(z[i], 2, "fixed") for i in (0, n // 2, n - 1)])
        ax.set_yticks(ticks, [fmt(z[::-1][i], 2, "fixed") for i in (0, n // 2, n - 1)])
        ax.set_xlabel("z1")
        ax.set_ylabel("z2")
        ax.set_title(f"decoded {n} x {n} grid over the prior (5%-95% quantiles)")
        return F.fig_to_data_uri(fig)


# --- tables -----------------------------------------------------------------------------------------------
def _quality_table(summary: Mapping[str, Any]) -> Markup:
    s = dict(summary.get("samples") or {})
    cov = dict(s.get("coverage") or {})
    rows = [
        ("reconstructions of held-out images read as their true class", fmt(summary.get("recon_accuracy"), 3),
         f"classifier on the originals: {fmt(summary.get('classifier_accuracy'), 3)}"),
        ("mean classifier confidence on prior samples", fmt(s.get("confidence"), 3),
         f"on held-out real images: {fmt(s.get('confidence_real'), 3)}"),
        ("classes present among the samples", f"{cov.get('n_present', '–')} of {cov.get('n_classes', '–')}",
         f"{s.get('n_samples', '–')} samples"),
        ("small-scale FID vs held-out real (lower is better)", fmt(s.get("fid"), 3),
         f"floor (held-out half vs half): {fmt(s.get('fid_floor'), 3)}"),
        ("precision (samples inside the real manifold)", fmt(s.get("precision"), 3),
         f"real vs real: {fmt(s.get('precision_floor'), 3)}"),
        ("recall (real images inside the samples' manifold)", fmt(s.get("recall"), 3),
         f"real vs real: {fmt(s.get('recall_floor'), 3)}"),
    ]
    body = "".join(f"<tr><td>{escape(a)}</td><td class=\"num\">{escape(b)}</td><td>{escape(c)}</td></tr>\n"
                   for a, b, c in rows)
    return Markup('<div class="table-scroll"><table><thead><tr><th>metric</th><th>value</th><th>reference</th>'
                  f"</tr></thead><tbody>\n{body}</tbody></table></div>")


def _elbo_lead(summary: Mapping[str, Any]) -> str:
    a, b = dict(summary.get("heldout_first") or {}), dict(summary.get("heldout_last") or {})
    return (f"The negative ELBO of held-out images (beta = 1, one fixed noise draw), nats per image: "
            f"{fmt(a.get('neg_elbo'), 4)} before training, {fmt(b.get('neg_elbo'), 4)} at the end "
            f"(reconstruction {fmt(b.get('recon'), 4)} + KL {fmt(b.get('kl'), 3)}).")


# --- public API -------------------------------------------------------------------------------------------
def render_vae_report(data: Mapping[str, Any]) -> str:
    """The full self-contained HTML page of a ``vae`` run, from stored data only."""
    run = dict(data.get("run") or {})
    summary = dict(data.get("summary") or {})
    checks = [dict(c) for c in data.get("checks") or summary.get("checks") or []]
    g = dict(data.get("gallery") or {})
    curves = dict(data.get("curves") or {})

    fig = lambda src, alt, caption: {"src": src, "alt": alt, "caption": caption}  # noqa: E731
    sections = [
        checks_section(checks, "Whether this run meets the issue's targets: the held-out ELBO improves over "
                       "training, and the digits classifier reads at least 90% of the reconstructions of held-out "
                       "images as their true class."),
        Section("elbo", "Held-out ELBO over training", render_fragment("figure.html", figures=[fig(
            _curves_figure(curves), "Held-out ELBO and its terms over training",
            "Left: held-out -ELBO and the training loss (whose KL weight rises during the warm-up); middle and "
            "right: the two terms on held-out images.")]), lead=_elbo_lead(summary)),
        Section("recon", "Reconstructions of held-out images", render_fragment("figure.html", figures=[fig(
            _recon_figure(g), "Held-out images and their reconstructions",
            "Upper rows: held-out images with their true class; lower rows: their reconstructions from the "
            "posterior mean, with the class the classifier reads (green: right, red: wrong).")]),
            lead="Images the model never trained on, encoded and decoded."),
        Section("samples", "Prior samples and their quality", Markup("\n").join([
            _quality_table(summary),
            render_fragment("figure.html", figures=[
                fig(_image_grid(g.get("samples") or [], 10, [f"{p}" for p in g.get("sample_pred") or []]),
                    "Prior samples", "Decoded z ~ N(0, I) (mean images), titled with the class the classifier "
                    "reads."),
                fig(_coverage_figure(summary.get("samples") or {}), "Class histogram of the samples",
                    "Classes the classifier reads in all prior samples; the dashed line is a uniform share.")]),
        ]), lead="FID and precision / recall are measured in the classifier's penultimate features (a small-scale "
                 "FID: Inception features mean nothing on 8x8 digits); each has its real-vs-real value beside it, "
                 "the best a model can score with this many images."),
    ]
    latent_figs = [fig(_latent_figure(g.get("latent") or {}), "Latent map by class",
                       "Posterior means of the held-out images, coloured by their true class.")]
    if g.get("traversal"):
        latent_figs.append(fig(_traversal_figure(g["traversal"]), "Latent traversal",
                               "Images decoded on a grid of z evenly spaced in prior probability."))
    lead = "Where the encoder puts each class, and what the decoder draws across the prior."
    if not g.get("traversal"):
        lead += " The traversal grid is drawn for a 2-D latent (--set model.latent_dim=2)."
    sections.append(Section("latent", "The latent space", render_fragment("figure.html", figures=latent_figs),
                            lead=lead))
    walls = wall_rows({"wall time (training)": data.get("wall_seconds")}, 1)
    return render_run_page(TITLE, data, sections, provenance=walls, subtitle=SUBTITLE, meta=run_meta(run, checks))
