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
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests import support
from tests.support import _one_thread, tiny_base, wait_until

__all__ = ["RAY_ADDRESS", "SCRIPT", "Cluster", "_one_thread", "wait_until", "write_study"]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "cluster-local.sh"
RAY_ADDRESS = "127.0.0.2:6399"
"""The test cluster's Ray head (cluster-local.sh binds it to 127.0.0.2)."""

DUO = '[[design]]\nkind = "seeds"\nshapes = [[2, 32]]\nseeds = [0, 1]\n'
"""Two runs of a 2-layer d32 model, 100 steps each, a checkpoint every 10: seconds apiece. Two workers
train both at once, one on each Ray node."""


def write_study(directory: Path) -> Path:
    """The study ``duo`` in ``directory``: the tiny base (tests/support.py) at 100 steps, two seeds."""
    return support.write_study(directory, "duo", DUO, base=tiny_base(steps=100))


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
        self._down: subprocess.Popen[bytes] | None = None

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

    def begin_down(self) -> None:
        """Begin ``down`` in the background: the daemons' exits are tens of seconds of waiting that the rest of
        the suite overlaps (``down`` then only waits for it)."""
        if self._up is not None and self._up.poll() is None:  # never waited for
            self._up.kill()
            self._up.communicate()
        if self._down is None:
            self._down = subprocess.Popen(["bash", str(SCRIPT), self.kind, "down"], env=self.env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    def down(self) -> None:
        """Take the cluster down: wait for a ``down`` begun in the background, or run one now."""
        if self._down is None:
            self.script("down", timeout=120)
        else:
            self._down.wait(timeout=120)


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
    if cluster is not None:
        cluster.begin_down()  # kills an ``up`` never waited for
        cluster.down()


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After this directory's last test, begin taking the clusters down (the session's end waits for it)."""
    if nextitem is None or nextitem.path.parent != item.path.parent:
        for cluster in _STARTED.values():
            cluster.begin_down()


def _reason_unavailable_quiet(kind: str) -> str:
    try:
        return _reason_unavailable(kind)
    except pytest.skip.Exception as e:
        return str(e)
