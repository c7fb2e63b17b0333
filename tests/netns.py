"""Machines of their own on this one: each host a Linux network namespace with its
own address, all joined by one bridge, as hosts on a LAN are by a switch. The
test's own process (the root namespace) reaches every host through the bridge.
Needs root (CI is root) and iproute2."""

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

BRIDGE = "ss-lan"
SUBNET = "10.77.0"  # the bridge is .1; hosts from .10


def _ip(*args: str, netns: str = "") -> None:
    command = ["ip", *(["netns", "exec", netns, "ip"] if netns else []), *args]
    subprocess.run(command, check=True, capture_output=True, timeout=30)


@dataclass(frozen=True)
class Host:
    name: str
    address: str

    @property
    def prefix(self) -> tuple[str, ...]:
        """What runs a command on this host."""
        return ("ip", "netns", "exec", self.name)

    def cut_from(self, other: "Host") -> None:
        """Packets from here to ``other`` are refused (a network partition: a
        connection attempt fails at once, an open one errors on its next send)."""
        _ip("route", "add", "prohibit", f"{other.address}/32", netns=self.name)

    def join_again(self, other: "Host") -> None:
        _ip("route", "del", "prohibit", f"{other.address}/32", netns=self.name)


def _remove(names: list[str]) -> None:
    for name in names:
        subprocess.run(["ip", "link", "del", f"{name}0"], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)


@contextmanager
def network(names: list[str]) -> Iterator[dict[str, Host]]:
    """A host per name (at most 12 characters), on one bridge; all removed after."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("hosts of their own need root and iproute2 (CI has both)")
    _remove(names)  # what a killed run left
    hosts = {}
    try:
        _ip("link", "add", BRIDGE, "type", "bridge")
        _ip("addr", "add", f"{SUBNET}.1/24", "dev", BRIDGE)
        _ip("link", "set", BRIDGE, "up")
        for number, name in enumerate(names, start=10):
            host = Host(name, f"{SUBNET}.{number}")
            _ip("netns", "add", name)
            _ip("link", "add", f"{name}0", "type", "veth", "peer", "name", f"{name}1")
            _ip("link", "set", f"{name}1", "netns", name)
            _ip("link", "set", f"{name}0", "master", BRIDGE, "up")
            _ip("addr", "add", f"{host.address}/24", "dev", f"{name}1", netns=name)
            _ip("link", "set", f"{name}1", "up", netns=name)
            _ip("link", "set", "lo", "up", netns=name)
            hosts[name] = host
        yield hosts
    finally:
        _remove(names)
