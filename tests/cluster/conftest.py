"""Real local clusters for the executor tests: SLURM (munge, slurmctld, slurmd) and a two-node Ray.

Both come up through ``scripts/cluster-local.sh`` on ports and in a state directory of their own, so a
cluster a developer already runs is left alone, and go down when the tests end, passed or failed. A
cluster that cannot start (no root, no packages, daemons that fail) skips its tests with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "cluster-local.sh"
RAY_ADDRESS = "127.0.0.2:6399"
"""The test cluster's Ray head (cluster-local.sh binds it to 127.0.0.2)."""

STUDY = """
name = "duo"
out_dir = "{out}"
recipe = "kaplan2020"
stale_seconds = 30

[base.model]
n_layer = 2
n_ctx = 32
d_model = 32
n_head = 2
vocab_size = 512

[base.data]
corpus = "stdlib"
vocab_size = 512

[base.optim]
batch_size = 8

[base.budget]
steps = 100

[base.eval]
points = 2
tokens = 2048
per_position = false

[base.runtime]
checkpoint_steps = 10

[[design]]
kind = "seeds"
shapes = [[2, 32]]
seeds = [0, 1]
"""
"""Two runs of a 2-layer d32 model, 100 steps each, a checkpoint every 10: seconds apiece. Two workers
train both at once, one on each Ray node."""


def write_study(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "duo.toml"
    path.write_text(STUDY.format(out=directory / "runs"))
    return path


class Cluster:
    """One kind of local cluster driven by cluster-local.sh, in its own state directory and ports."""

    def __init__(self, kind: str, state_dir: Path) -> None:
        self.kind = kind
        self.env = {
            **os.environ,
            "SCALINGLAB_CLUSTER_DIR": str(state_dir),
            "SCALINGLAB_SLURM_PORT": "6827",
            "SCALINGLAB_RAY_PORT": RAY_ADDRESS.rsplit(":", 1)[1],
        }
        self.slurm_conf = str(state_dir / "slurm" / "slurm.conf")
        self._up: subprocess.Popen[str] | None = None

    def script(self, action: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(SCRIPT), self.kind, action], env=self.env, capture_output=True,
                              text=True, timeout=timeout)  # fmt: skip

    def start(self) -> None:
        """Begin ``up`` in the background (Ray's start takes tens of seconds: other tests run meanwhile)."""
        self._up = subprocess.Popen(["bash", str(SCRIPT), self.kind, "up"], env=self.env, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip

    def wait_up(self, timeout: float = 240) -> None:
        """Wait for ``up``; skip (after tearing down what started) when the cluster cannot come up."""
        assert self._up is not None
        try:
            _, err = self._up.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._up.kill()
            self._up.communicate()
            self.down()
            pytest.skip(f"the local {self.kind} cluster did not come up within {timeout:.0f} s")
        if self._up.returncode != 0:
            self.down()
            pytest.skip(f"no local {self.kind} cluster: {err.strip().splitlines()[-1] if err.strip() else 'up failed'}")

    def down(self) -> None:
        self.script("down", timeout=120)


def _reason_unavailable(kind: str) -> str:
    """Why a local cluster of this kind cannot start here, or ''."""
    if not sys.platform.startswith("linux"):
        return f"the local {kind} cluster needs Linux"
    if kind == "slurm":
        if os.geteuid() != 0:
            return "the local SLURM cluster needs root (slurmd starts jobs as their user)"
        if not shutil.which("slurmctld") and not shutil.which("apt-get"):
            return "SLURM is not installed and apt-get is missing; apt-get install slurm-wlm munge"
        pytest.importorskip("submitit", reason="the slurm executor needs submitit: pip install 'scalinglab[slurm]'")
    else:
        pytest.importorskip("ray", reason="the ray executor needs Ray: pip install 'scalinglab[ray]'")
    return ""


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A two-node Ray cluster on loopback; its start overlaps the SLURM tests (started by ``clusters``)."""
    yield from _cluster("ray", tmp_path_factory)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A one-node SLURM cluster on localhost: partitions main (default) and short (1 minute)."""
    yield from _cluster("slurm", tmp_path_factory)


_STARTED: dict[str, Cluster] = {}


def _cluster(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    reason = _reason_unavailable(kind)
    if reason:
        pytest.skip(reason)
    cluster = _STARTED.get(kind) or Cluster(kind, Path(f"/tmp/scalinglab-test-{kind}-{os.getpid()}"))
    if kind not in _STARTED:
        cluster.start()
    _STARTED[kind] = cluster
    try:
        cluster.wait_up()
        yield cluster
    finally:
        cluster.down()
        shutil.rmtree(cluster.env["SCALINGLAB_CLUSTER_DIR"], ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _start_ray_early(request: pytest.FixtureRequest) -> Iterator[None]:
    """Start the Ray cluster as soon as this directory's tests begin, so its slow start overlaps them."""
    wanted = any("ray_cluster" in item.fixturenames for item in request.session.items)
    cluster = None
    if wanted and not _reason_unavailable_quiet("ray"):
        cluster = Cluster("ray", Path(f"/tmp/scalinglab-test-ray-{os.getpid()}"))
        cluster.start()
        _STARTED["ray"] = cluster
    yield
    if cluster is not None and cluster._up is not None and cluster._up.poll() is None:  # never waited for
        cluster._up.kill()
        cluster._up.communicate()
    if cluster is not None:
        cluster.down()


def _reason_unavailable_quiet(kind: str) -> str:
    try:
        return _reason_unavailable(kind)
    except pytest.skip.Exception as e:
        return str(e)


def wait_until(condition, timeout: float, what: str, every: float = 0.05) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """CPU is shared: every torch the tests start uses one thread."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
