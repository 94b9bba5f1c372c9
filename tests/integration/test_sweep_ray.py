"""The Ray executor on a simulated two-node cluster (`ray.cluster_utils.Cluster`: a head with no CPUs, two
worker nodes with one CPU each, so the tasks must spread over both). Each task runs its point in its own
scratch folder with its own store and sends the run back; only the driver (this process) writes the
store. Same summaries as the in-process executor; a killed driver's re-issued sweep runs only the missing
points."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emergelab.runner import get_experiment
from emergelab.runs.store import RunStore
from emergelab.sweeps import run_sweep

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

EXP = "icl-regression"
TINY = [*get_experiment(EXP).tiny, "threads=1"]  # one thread everywhere: the same floating-point sums


@pytest.fixture(scope="module")
def cluster():
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):
        c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False)
    yield c
    ray.shutdown()
    c.shutdown()


def without_wall(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k != "wall_seconds"}


def test_two_nodes_give_the_in_process_summaries_and_only_the_driver_writes(cluster, tmp_path):
    grid = {"seed": [0, 1]}
    local = run_sweep(EXP, grid, overrides=TINY, store=tmp_path / "local" / "e.db", progress=False)
    store = tmp_path / "driver" / "e.db"
    seen = []
    res = run_sweep(EXP, grid, overrides=TINY, store=store, executor="ray", workers=2, progress=False,
                    on_point=seen.append)
    assert not res.failed and [r["status"] for r in res.rows] == ["completed", "completed"]
    head = ray.get_runtime_context().get_node_id()
    where = [p["where"] for p in seen]
    assert len({w["node"] for w in where}) == 2 and head not in {w["node"] for w in where}  # both worker nodes
    for w in where:  # own scratch folder each, away from the driver's store, gone afterwards
        assert not Path(w["scratch"]).exists() and not Path(w["scratch"]).is_relative_to(store.parent)
        assert w["pid"] != os.getpid()
    assert len({w["scratch"] for w in where}) == 2
    assert list(store.parent.glob("*.db")) == [store]  # no other store was made next to the driver's

    with RunStore(tmp_path / "local" / "e.db") as a, RunStore(store) as b:
        assert {r.id for r in b.list_runs()} == {r["run_id"] for r in res.rows}
        for lr, rr in zip(local.rows, res.rows, strict=True):
            assert without_wall(a.get_result(lr["run_id"], "summary")) == without_wall(
                b.get_result(rr["run_id"], "summary"))
            assert a.metrics(lr["run_id"]).keys() == b.metrics(rr["run_id"]).keys()
            run = b.get_run(rr["run_id"])
            assert {"config.yaml", "summary.json", "report.html"} <= {p.name for p in run.dir.iterdir()}
            assert list((run.dir / "checkpoints").glob("*.safetensors"))  # the artifacts came back too
            assert {k for _, k in b.artifacts(run.id)} >= {"config", "summary", "report"}


def test_a_killed_drivers_sweep_is_finished_by_reissuing_it(cluster, tmp_path):
    """kill -9 of a driver with one point in flight: the completed points are in the store, the one in flight
    never reached it; the re-issued sweep reuses the first and runs exactly the missing ones."""
    store = tmp_path / "e.db"
    seeds = list(range(5))
    args = [sys.executable, "-m", "emergelab.cli", "sweep", EXP, "--grid", f"seed={','.join(map(str, seeds))}",
            "--executor", "ray", "--address", cluster.address, "--workers", "1", "--no-progress",
            "--store", str(store), *sum((["--set", s] for s in TINY), [])]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 240
    completed = []
    while time.time() < deadline and not completed:
        assert proc.poll() is None, proc.communicate()
        if store.exists():
            with RunStore(store) as st:
                completed = [r.id for r in st.list_runs() if r.status == "completed"]
        time.sleep(0.05)
    proc.kill()
    proc.communicate(timeout=60)
    with RunStore(store, create=False) as st:
        before = {r.id: r.status for r in st.list_runs()}
    assert completed and len(before) < len(seeds) and set(before.values()) == {"completed"}

    ran = []
    res = run_sweep(EXP, {"seed": seeds}, overrides=TINY, store=store, executor="ray", workers=2, progress=False,
                    on_point=ran.append)
    assert not res.failed and all(r["status"] == "completed" for r in res.rows)
    reused = {r["run_id"] for r in res.rows if r["reused"]}
    assert reused == set(before) and len(ran) == len(seeds) - len(before)  # only the missing points ran
    with RunStore(store, create=False) as st:
        assert len(st.list_runs()) == len(seeds)
