"""The flow table every internet reader produces and the host-graph builder consumes.

One row per flow (a Zeek connection, a CICFlowMeter flow), sorted by start time (stable, so
flows that start together keep file order): Zeek writes a connection when it ends, so its rows
are not in start order. Hosts are indices into the capture's host table; an address is only
ever turned into coarse behavioural flags (private, IPv6, multicast/broadcast), never into an
identity a model could memorise.
"""

import dataclasses
import ipaddress
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


def host_flags(addresses: list[str]) -> tuple[np.ndarray, list[int]]:
    """Behavioural flags of each distinct address, and the indices of those that are not IP
    addresses. A loop over distinct hosts (hundreds), not over flows."""
    flags = np.zeros((len(addresses), len(HOST_FLAGS)), dtype=np.float32)
    bad = []
    for i, text in enumerate(addresses):
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 zone is not part of it
        except ValueError:
            bad.append(i)
            continue
        broadcast = address.version == 4 and str(address) == "255.255.255.255"
        flags[i] = (
            float(address.is_private),
            float(address.version == 6),
            float(address.is_multicast or broadcast),
        )
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
