"""The operating system as a fault: a full disk (a small tmpfs), and what a local Ray exposes to the network."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.faults.conftest import cli, train_args

from scalinglab.train.rundir import read_status


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs; skipped where mounting is not permitted (not root, or in a container without CAP_SYS_ADMIN)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
@pytest.mark.parametrize("room", [6_000, 160_000])  # not even for config.json; for the JSON and metrics, not a checkpoint
def test_a_full_disk_is_one_line_leaves_no_temp_files_and_resumes_once_freed(cache, small_disk, room) -> None:
    filler = small_disk / "filler"
    free = shutil.disk_usage(small_disk).free
    filler.write_bytes(b"\0" * (free - room))
    run = small_disk / "run"
    proc = cli(*train_args(cache, run, "budget.steps=20", "runtime.checkpoint_steps=5"))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and len(err.strip().splitlines()) == 1, err
    assert "No space left on device [ENOSPC]" in err and str(small_disk) in err and "free some space" in err
    assert not [p for p in small_disk.rglob("*") if p.name.endswith(".tmp")]  # no half-written temp files
    assert read_status(run)["state"] == "pending"  # not left running, not failed: resumable

    filler.unlink()
    proc = cli(*train_args(cache, run, "budget.steps=20", "runtime.checkpoint_steps=5"))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert read_status(run)["state"] == "done"


def _listening(pids: set[int]) -> list[str]:
    """Local addresses of the TCP sockets in LISTEN state held by ``pids`` (from /proc, as ss reads them)."""
    inodes: dict[str, int] = {}
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes[target[8:-1]] = pid
        except OSError:
            continue
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.append(fields[1].split(":")[0])
    return found


LOOPBACK = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}
"""127.0.0.1, ::1 and ::ffff:127.0.0.1 as /proc/net/tcp{,6} write them."""


@pytest.mark.slow
def test_a_local_ray_listens_on_loopback_only() -> None:
    pytest.importorskip("ray")
    from scalinglab.study.executors import ExecutorConfig, RayExecutor

    ex = RayExecutor(ExecutorConfig(kind="ray", workers=1))
    try:
        import ray

        session = os.path.basename(ray._private.worker._global_node.get_session_dir_path())
        pids = {os.getpid()}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if session.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    pids.add(int(pid))
            except OSError:
                continue
        addresses = _listening(pids)
        assert len(pids) > 2 and addresses, "found no Ray process listening"
        assert set(addresses) <= LOOPBACK, addresses
    finally:
        ex.close()
