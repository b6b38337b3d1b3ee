"""The executors' cluster options and the plan for a cluster, without starting one (fast)."""

from __future__ import annotations

import heapq
import json
from pathlib import Path

import pytest
from tests.cluster.conftest import write_study

from scalinglab.cli import main
from scalinglab.errors import ConfigError
from scalinglab.study import ExecutorConfig, load_study, plan_study, plan_totals
from scalinglab.study.executors import key_values, signal_lead_seconds
from scalinglab.study.throughput import parallel_costs


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("slurm_options", ("qos",), "slurm option 'qos' is not key=value"),
        ("slurm_options", ("=high",), "slurm option '=high' is not key=value"),
        ("ray_resources", ("node2=many",), "ray resource 'node2=many': 'many' is not a float"),
        ("slurm_time_min", 0, "the slurm time limit must be at least 1 minute"),
    ],
)
def test_bad_cluster_options_name_the_fix(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ExecutorConfig(kind="slurm", **{field: value})


def test_cluster_options_parse() -> None:
    assert key_values(("qos=high", " mem = 32G"), "slurm option", str) == {"qos": "high", "mem": "32G"}
    assert key_values(("node2=1", "a100=0.5"), "ray resource", float) == {"node2": 1.0, "a100": 0.5}
    # the time-limit warning comes 90 s ahead, never before a short limit's first quarter is over
    assert [signal_lead_seconds(m) for m in (1, 2, 6, 240)] == [15, 30, 90, 90]


def test_plan_for_a_cluster_has_no_local_slowdown(tmp_path: Path, capsys) -> None:
    table = plan_study(load_study(write_study(tmp_path)), measure=False)
    table["est_seconds"] = [30.0, 20.0]
    table.attrs["data_seconds"] = 1.0
    startup = parallel_costs(1)[0]  # one fresh process: measured on this machine, cached

    def lpt(seconds: list[float], k: int) -> float:
        queues = [0.0] * k
        for s in sorted(seconds, reverse=True):
            heapq.heapreplace(queues, queues[0] + s)
        return max(queues)

    slurm = plan_totals(table, workers=2, executor="slurm")
    assert slurm["executor"] == "slurm" and slurm["parallel_slowdown"] == 1.0
    assert slurm["est_wall_seconds"] == pytest.approx(1.0 + lpt([30 + startup, 20 + startup], 2))
    ray = plan_totals(table, workers=2, executor="ray")  # Ray's workers start once and are reused
    assert ray["est_wall_seconds"] == pytest.approx(1.0 + startup + lpt([30, 20], 2))
    one = plan_totals(table, workers=1, executor="slurm")  # every array task pays its start-up
    assert one["est_wall_seconds"] == pytest.approx(1.0 + 50 + 2 * startup)

    path = write_study(tmp_path)
    assert main(["study", "plan", str(path), "--executor", "slurm", "--workers", "64", "--no-measure", "--json"]) == 0
    totals = json.loads(capsys.readouterr().out)["totals"]
    assert totals["executor"] == "slurm" and totals["workers"] == 64


def test_local_plan_slows_each_run_by_the_slowdown_measured_back_to_back(tmp_path: Path) -> None:
    # K processes at once, then one alone right after (under the same load), cached per machine: the CPU
    # model and cores are in the key, as sandboxes share one host name
    from scalinglab.host import machine
    from scalinglab.study.throughput import cache_path
    from scalinglab.train.rundir import read_json

    table = plan_study(load_study(write_study(tmp_path)), measure=False)
    table["est_seconds"] = [30.0, 20.0]
    table.attrs["data_seconds"] = 1.0
    startup, slowdown = parallel_costs(2)
    assert startup > 0 and slowdown >= 1.0 and parallel_costs(1)[1] == 1.0
    local = plan_totals(table, workers=2)
    assert local["parallel_slowdown"] == slowdown
    assert local["est_wall_seconds"] == pytest.approx(1.0 + startup + 30 * slowdown)
    assert machine()["cpu"] and machine()["cores"] >= 1
    assert any(isinstance(v, list) and len(v) == 3 for v in read_json(cache_path()).values())  # [start-up, K at once, alone]


def test_plan_without_a_cluster_to_size_says_give_workers(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no sinfo: nothing to size a SLURM cluster by
    path = write_study(tmp_path)
    assert main(["study", "plan", str(path), "--executor", "slurm", "--no-measure"]) == 2
    err = capsys.readouterr().err.strip()
    assert "give --workers" in err and "\n" not in err
    assert main(["study", "plan", str(path), "--executor", "ray", "--no-measure"]) == 2
    assert "give --workers or --ray-address" in capsys.readouterr().err
