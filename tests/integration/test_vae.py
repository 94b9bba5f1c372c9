"""The `vae` experiment end to end through the CLI (a few seconds of training): summary.json with the ELBO, the
reconstruction accuracy and the sample metrics, shaped as declared; the checks recorded; the report with its
figures; a bad config value refused with exit 2 before any run exists."""

import json
import os
import subprocess
import sys

import pytest

from emergelab.experiments import vae  # noqa: F401  (registers the experiment)
from emergelab.experiments.configs.schema import compare
from emergelab.experiments.configs.vae import VAEConfig

TINY = ("train.epochs=3", "train.log_every_epochs=1", "n_samples=450", "model.latent_dim=2")  # 2: the traversal too


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "emergelab.cli", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    store = tmp_path_factory.mktemp("vae") / "e.db"
    sets = [a for s in TINY for a in ("--set", s)]
    r = subprocess.run(_cli("run", "vae", "--no-progress", "--store", str(store), *sets), capture_output=True,
                       text=True, env=_env(), timeout=300)
    assert r.returncode == 0, r.stderr
    return r, next(store.parent.glob("*-vae-*/summary.json")).parent


def test_tiny_run_writes_summary_checks_and_report(finished):
    r, run_dir = finished
    s = json.loads((run_dir / "summary.json").read_text())
    assert compare(s, VAEConfig().summary_paths()) == ([], [])
    assert s["heldout_last"]["neg_elbo"] < s["heldout_first"]["neg_elbo"]  # 3 epochs already lower the -ELBO
    assert s["heldout_last"]["neg_elbo"] == pytest.approx(s["heldout_last"]["recon"] + s["heldout_last"]["kl"],
                                                          abs=1e-3)
    assert s["classifier_accuracy"] > 0.95 and 0 <= s["recon_accuracy"] <= 1
    q = s["samples"]
    assert q["n_samples"] == 450 and sum(q["coverage"]["histogram"]) == 450
    assert q["fid"] >= 0 and q["fid_floor"] > 0 and 0 <= q["precision"] <= 1 and 0 <= q["recall"] <= 1
    names = [c["name"] for c in s["checks"]]
    assert len(names) == 2 and "ELBO" in names[0] and "90%" in names[1]
    assert s["checks"][0]["passed"] is True
    assert "PASS held-out ELBO improves" in r.stdout
    html = (run_dir / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 6  # curves, reconstructions, samples, coverage, latent, traversal
    for title in ("Held-out ELBO over training", "Reconstructions of held-out images", "Prior samples",
                  "The latent space", "small-scale FID"):
        assert title in html


def test_bad_config_value_exits_2_and_creates_nothing(tmp_path):
    store = tmp_path / "e.db"
    r = subprocess.run(_cli("run", "vae", "--no-progress", "--store", str(store), "--set", "train.kl_warmup=1.5"),
                       capture_output=True, text=True, env=_env(), timeout=120)
    assert r.returncode == 2
    assert "kl_warmup" in r.stderr and "Traceback" not in r.stderr
    assert not any(p.is_dir() for p in tmp_path.iterdir())
