"""The hosts file of an MLX run over several Macs (mlx.launch's own format, so the file
`mlx.distributed_config` writes works as is), checked before anything starts. No mlx import."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

from localft.errors import ConfigError

BACKENDS = ("ring", "jaccl", "jaccl-ring")  # TCP over any network; RDMA over Thunderbolt 5
EXAMPLE = '{"hosts": [{"ssh": "mac1.local", "ips": ["192.168.1.10"]}, {"ssh": "mac2.local", "ips": ["192.168.1.11"]}]}'


@dataclass(frozen=True)
class Hostfile:
    backend: str
    hosts: tuple[str, ...]  # ssh names, rank order


def read_hosts(path: Path, world_size: int | None = None) -> Hostfile:
    """The hosts of `path` (one rank each, in order), or a ConfigError naming what is wrong."""
    path = Path(path)

    def bad(what: str) -> ConfigError:
        return ConfigError(f"hosts file {path}: {what}; expected e.g. {EXAMPLE}")

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"hosts file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"hosts file {path} cannot be read ({exc})") from None
    except ValueError as exc:
        raise bad(f"not JSON ({exc})") from None
    backend = "ring"
    if isinstance(data, dict):
        backend = data.get("backend") or "ring"
        if backend not in BACKENDS:
            raise bad(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
        data = data.get("hosts")
    if not isinstance(data, list) or not data:
        raise bad("no list of hosts")
    names = []
    for rank, host in enumerate(data):
        if not isinstance(host, dict) or not isinstance(host.get("ssh"), str) or not host["ssh"]:
            raise bad(f'host {rank} has no "ssh" name')
        ips = host.get("ips") or []
        if backend == "ring" and not ips:
            raise bad(f'host {rank} ({host["ssh"]}) has no "ips": the ring backend connects by IP address')
        for ip in ips:
            try:
                ipaddress.ip_address(ip)
            except (TypeError, ValueError):
                raise bad(f"host {rank} ({host['ssh']}): {ip!r} is not an IP address") from None
        if backend != "ring" and len(host.get("rdma") or []) != len(data):
            raise bad(
                f'host {rank} ({host["ssh"]}) needs an "rdma" list with one entry per host for {backend}'
            )
        if rank == 0 and not ips:
            raise bad(f'host 0 ({host["ssh"]}) has no "ips": the other hosts connect to it by IP address')
        names.append(host["ssh"])
    if len(data) < 2:
        raise bad("one host: train without --hosts on one machine")
    if world_size is not None and world_size != len(data):
        raise ConfigError(
            f"hosts file {path} lists {len(data)} hosts but --nproc is {world_size}; drop --nproc"
        )
    return Hostfile(backend, tuple(names))
