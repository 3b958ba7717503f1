"""The flow table every internet reader produces and the host-graph builder consumes.

One row per flow (a Zeek connection, a CICFlowMeter flow), sorted by start time (stable, so
flows that start together keep file order): Zeek writes a connection when it ends, so its rows
are not in start order. Hosts are indices into the capture's host table; an address is only
ever turned into coarse behavioural flags (private, IPv6, multicast/broadcast), never into an
identity a model could memorise.
"""

import dataclasses
import ipaddress
import socket
from pathlib import Path

import numpy as np

PROTOCOLS: dict[str, int] = {"tcp": 0, "udp": 1, "icmp": 2}
OTHER_PROTOCOL = 3
BENIGN = "benign"


@dataclasses.dataclass
class Flows:
    """Flows of one capture, by start time. label: 1 attack, 0 benign, -1 unlabelled
    (Background / Unknown); attack: index into attack_names (0 = benign)."""

    source: Path
    time: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    src_port: np.ndarray
    dst_port: np.ndarray
    proto: np.ndarray
    duration: np.ndarray
    orig_bytes: np.ndarray
    resp_bytes: np.ndarray
    orig_pkts: np.ndarray
    resp_pkts: np.ndarray
    label: np.ndarray
    attack: np.ndarray
    attack_names: tuple[str, ...]
    host_flags: np.ndarray
    """float32 (hosts, 3): private address, IPv6, multicast or broadcast."""
    label_counts: dict[str, int]
    """Flows per label as written in the file (before any unlabelled policy)."""
    skipped: int = 0
    dropped_unlabelled: int = 0

    def __len__(self) -> int:
        return int(self.time.shape[0])

    def select(self, keep: np.ndarray | slice) -> "Flows":
        """The flows where keep holds (hosts, names and counts unchanged)."""
        return dataclasses.replace(self, **{name: getattr(self, name)[keep] for name in PER_FLOW})


PER_FLOW = (
    *("time", "src", "dst", "src_port", "dst_port", "proto", "duration"),
    *("orig_bytes", "resp_bytes", "orig_pkts", "resp_pkts", "label", "attack"),
)
HOST_FLAGS: tuple[str, ...] = ("private_address", "ipv6", "multicast_or_broadcast")

# Addresses that are not globally reachable (IANA special-purpose address registries), frozen here
# rather than taken from ipaddress's is_private: Python changed that in 3.11.10 / 3.12.4, and a
# feature must not depend on the interpreter's patch release (the cache key does not hold it).
PRIVATE_V4 = (
    *("0.0.0.0/8", "10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24"),
    *("192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24"),
    *("240.0.0.0/4", "255.255.255.255/32"),
)
PUBLIC_V4 = ("192.0.0.9/32", "192.0.0.10/32")  # globally reachable inside 192.0.0.0/24
PRIVATE_V6 = (
    *("::1/128", "::/128", "::ffff:0:0/96", "64:ff9b:1::/48", "100::/64", "2001::/23"),
    *("2001:db8::/32", "2002::/16", "fc00::/7", "fe80::/10"),
)
PUBLIC_V6 = (
    "2001:1::1/128",
    "2001:1::2/128",
    "2001:3::/32",
    "2001:4:112::/48",
    "2001:20::/28",
    "2001:30::/28",
)
MULTICAST_V4, MULTICAST_V6, BROADCAST_V4 = "224.0.0.0/4", "ff00::/8", (1 << 32) - 1


def _ranges(cidrs: tuple[str, ...]) -> list[tuple[int, int]]:
    networks = [ipaddress.ip_network(c) for c in cidrs]
    return [(int(n.network_address), int(n.broadcast_address)) for n in networks]


def _within(values: np.ndarray, cidrs: tuple[str, ...]) -> np.ndarray:
    inside = np.zeros(len(values), dtype=bool)
    for first, last in _ranges(cidrs):
        inside |= (values >= first) & (values <= last)
    return inside


def _address_value(text: str) -> tuple[int, int] | None:
    """(IP version, integer value) of an address, or None. inet_pton is C (the reader meets
    thousands of distinct hosts); ipaddress decides whatever it refuses."""
    text = text.split("%", 1)[0]  # an IPv6 zone (fe80::1%eth0) is not part of the address
    for family, version in ((socket.AF_INET, 4), (socket.AF_INET6, 6)):
        try:
            return version, int.from_bytes(socket.inet_pton(family, text), "big")
        except OSError:
            continue
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return address.version, int(address)


def host_flags(addresses: list[str]) -> tuple[np.ndarray, list[int]]:
    """Behavioural flags of each distinct address (HOST_FLAGS), and the indices of those that
    are not IP addresses. One parse per distinct host, range checks vectorised."""
    parsed = [_address_value(text) for text in addresses]
    bad = [i for i, p in enumerate(parsed) if p is None]
    version = np.array([p[0] if p else 0 for p in parsed], dtype=np.int8)
    value = [p[1] if p else 0 for p in parsed]
    flags = np.zeros((len(addresses), len(HOST_FLAGS)), dtype=np.float32)
    v4 = np.flatnonzero(version == 4)
    value4 = np.array([value[i] for i in v4], dtype=np.int64)
    flags[v4, 0] = _within(value4, PRIVATE_V4) & ~_within(value4, PUBLIC_V4)
    flags[v4, 2] = _within(value4, (MULTICAST_V4,)) | (value4 == BROADCAST_V4)
    v6 = np.flatnonzero(version == 6)
    value6 = np.array([value[i] for i in v6], dtype=np.object_)  # 128 bits: Python integers
    flags[v6, 0] = _within(value6, PRIVATE_V6) & ~_within(value6, PUBLIC_V6)
    flags[v6, 1] = 1.0
    flags[v6, 2] = _within(value6, (MULTICAST_V6,))
    return flags, bad


def sort_by_time(flows: Flows) -> Flows:
    order = np.argsort(flows.time, kind="stable")
    if (order == np.arange(len(order))).all():
        return flows
    return flows.select(order)


def apply_unlabelled_policy(flows: Flows, policy: str) -> Flows:
    """'context': keep unlabelled flows as they are; 'benign': count them as benign; 'drop':
    remove them (counted in dropped_unlabelled)."""
    unlabelled = flows.label < 0
    if policy == "context" or not unlabelled.any():
        return flows
    if policy == "benign":
        return dataclasses.replace(flows, label=np.where(unlabelled, 0, flows.label).astype(np.int8))
    kept = flows.select(~unlabelled)
    return dataclasses.replace(kept, dropped_unlabelled=int(unlabelled.sum()))
