"""The hosts file of an MLX run over several Macs: what a person writes by hand is checked before
anything starts, with a one-line error naming the host and the field."""

from __future__ import annotations

import json

import pytest

from localft.backends.mlx.hosts import read_hosts
from localft.errors import ConfigError

TWO_MACS = {
    "hosts": [{"ssh": "mac1.local", "ips": ["192.168.1.10"]}, {"ssh": "mac2.local", "ips": ["192.168.1.11"]}]
}


def write(tmp_path, data) -> str:
    path = tmp_path / "hosts.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_two_macs_over_the_ring(tmp_path):
    hosts = read_hosts(write(tmp_path, TWO_MACS))
    assert hosts.backend == "ring" and hosts.hosts == ("mac1.local", "mac2.local")
    # mlx.launch's plain list form, as `mlx.distributed_config` writes it, reads the same
    assert read_hosts(write(tmp_path, TWO_MACS["hosts"]), world_size=2) == hosts


def test_jaccl_over_thunderbolt_needs_an_rdma_entry_per_host(tmp_path):
    jaccl = {
        "backend": "jaccl",
        "hosts": [
            {"ssh": "mac1.local", "ips": ["10.0.0.1"], "rdma": [None, "rdma_en3"]},
            {"ssh": "mac2.local", "rdma": ["rdma_en3", None]},
        ],
    }
    assert read_hosts(write(tmp_path, jaccl)).backend == "jaccl"
    del jaccl["hosts"][1]["rdma"]
    with pytest.raises(ConfigError, match=r'host 1 \(mac2.local\) needs an "rdma" list'):
        read_hosts(write(tmp_path, jaccl))


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{not json", "not JSON"),
        ({"hosts": []}, "no list of hosts"),
        ({"backend": "mpi", "hosts": TWO_MACS["hosts"]}, "backend 'mpi' is not one of ring, jaccl"),
        ([{"ips": ["192.168.1.10"]}, {"ssh": "b", "ips": ["192.168.1.11"]}], 'host 0 has no "ssh" name'),
        ([{"ssh": "a", "ips": ["192.168.1.10"]}, {"ssh": "b"}], r'host 1 \(b\) has no "ips"'),
        (
            [{"ssh": "a", "ips": ["192.168.1.10"]}, {"ssh": "b", "ips": ["mac2.local"]}],
            "'mac2.local' is not an IP",
        ),
        ([{"ssh": "a", "ips": ["192.168.1.10"]}], "one host"),
    ],
)
def test_a_bad_hosts_file_is_named_in_one_line(tmp_path, content, says):
    with pytest.raises(ConfigError, match=says) as caught:
        read_hosts(write(tmp_path, content))
    assert "hosts.json" in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_file_and_a_different_nproc_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_hosts(tmp_path / "nowhere.json")
    with pytest.raises(ConfigError, match="lists 2 hosts but --nproc is 3"):
        read_hosts(write(tmp_path, TWO_MACS), world_size=3)


def test_the_world_mlx_launch_starts_a_rank_in(tmp_path):
    """mlx.launch sets only MLX_RANK and a file listing one entry per rank (the ring's hosts, or
    JACCL's RDMA devices): the world size is read from that file."""
    from localft.train.world import World

    ring = tmp_path / "ring.json"
    ring.write_text(json.dumps([["127.0.0.1:5000"], ["127.0.0.1:5001"], ["127.0.0.1:5002"]]))
    assert World.from_env({"MLX_RANK": "2", "MLX_HOSTFILE": str(ring)}) == World(2, 3, 2)
    ibv = tmp_path / "ibv.json"
    ibv.write_text(json.dumps([[None, "rdma_en3"], ["rdma_en3", None]]))
    world = World.from_env(
        {"MLX_RANK": "0", "MLX_IBV_DEVICES": str(ibv), "MLX_JACCL_COORDINATOR": "10.0.0.1:5"}
    )
    assert world == World(0, 2, 0) and world.is_writer


@pytest.mark.parametrize(
    ("ends", "named"),
    [
        ([(0, 1), (1, -9)], "rank 1 was killed by SIGKILL"),  # the peer that lost rank 1 ended first
        ([(0, 2), (1, -15)], "rank 0 exited with code 2"),  # then the launcher stopped rank 1
    ],
)
def test_a_dead_rank_is_named_from_the_wrappers_report_of_mlx_launch(tmp_path, ends, named):
    """mlx.launch exits 0 even when a rank dies; the wrapper turns its per-rank lines into the
    failure report the run's worker reads, which names the rank killed by a signal first."""
    from localft.backends.mlx.launcher import failure_report
    from localft.run.folder import RunDir
    from localft.run.rank_group import dead_rank_message

    assert failure_report([(0, 0), (1, 0)]) is None
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.log_path.write_text("training output\n" + failure_report(ends) + "\n", encoding="utf-8")
    message = dead_rank_message(run, 1)
    assert f"training process {named}" in message and "\n" not in message, message


def test_the_launch_command_for_this_machine_and_for_several_macs(tmp_path, monkeypatch):
    """`--nproc N` here: the ring over 127.0.0.1 on free ports; `--hosts`: the hosts file's backend,
    the run folder's home passed on to the other Macs."""
    import sys

    from localft.backends.mlx.launcher import launch_command

    worker = ["-m", "localft.run.worker", "RUN", "--rank-worker"]
    here = launch_command(worker, 2, None)
    assert here[:3] == [sys.executable, "-m", "localft.backends.mlx.launcher"]
    assert here[here.index("-n") + 1] == "2" and here[here.index("--backend") + 1] == "ring"
    assert int(here[here.index("--starting-port") + 1]) >= 32323
    assert here[-5:] == ["--", *worker]
    monkeypatch.setenv("LOCALFT_HOME", str(tmp_path / "home"))
    macs = launch_command(worker, 2, write(tmp_path, TWO_MACS))
    assert macs[macs.index("--hostfile") + 1] == str(tmp_path / "hosts.json")
    assert f"LOCALFT_HOME={tmp_path / 'home'}" in macs and "-n" not in macs
    with pytest.raises(ConfigError, match="lists 2 hosts but --nproc is 3"):
        launch_command(worker, 3, write(tmp_path, TWO_MACS))


def test_train_hosts_runs_one_process_per_host_and_refuses_a_bad_file_in_one_line(tmp_path):
    """`localft train --hosts` as a user types it: the file sets the process count (no --nproc
    needed); a bad file or a different --nproc is one line, exit 2, before anything is imported."""
    pytest.importorskip("mlx")
    from tests.command_support import localft
    from tests.training import chat_rows, write_jsonl

    data = tmp_path / "chat.jsonl"
    write_jsonl(data, chat_rows(8))
    bad = write(tmp_path, [{"ssh": "a", "ips": ["192.168.1.10"]}, {"ssh": "b"}])
    out = localft("train", data, "--backend", "mlx", "--hosts", bad, "--steps", "2", "--plan")
    assert out.returncode == 2 and out.stderr.startswith("error: hosts file") and out.stderr.count("\n") == 1
    assert 'host 1 (b) has no "ips"' in out.stderr
    good = write(tmp_path, TWO_MACS)
    out = localft(
        "train", data, "--backend", "mlx", "--hosts", good, "--nproc", "3", "--steps", "2", "--plan"
    )
    assert out.returncode == 2 and "lists 2 hosts but --nproc is 3" in out.stderr
    out = localft("train", data, "--backend", "mlx", "--hosts", good, "--steps", "2", "--plan")
    assert out.returncode == 0, out.stderr
    assert "plan: processes: 2 (data-parallel)" in out.stdout


def test_the_plan_makes_one_process_per_host_and_refuses_hosts_on_torch(tmp_path):
    """However the hosts file arrives (`--hosts` or `--set hosts=`), the plan counts one process per
    host; torch trains on one machine, so a hosts file there is refused before anything starts."""
    from localft.backends import Availability
    from localft.config import TrainSpec
    from localft.plan.hardware import Machine
    from localft.plan.planner import apply_plan, plan

    mac = Machine({"mlx": Availability(True, "gpu", "MLX on Metal"), "torch": Availability(True, "mps", "MPS")},
                  32 * 2**30, unified=True)  # fmt: skip
    hosts = str(write(tmp_path, TWO_MACS))
    spec = TrainSpec(backend="mlx", hosts=hosts)
    planned = plan(spec, mac)
    assert planned.world_size == 2 and apply_plan(spec, planned).nproc == 2
    with pytest.raises(ConfigError, match="--hosts is for the mlx backend"):
        plan(TrainSpec(backend="torch", hosts=hosts), mac)
