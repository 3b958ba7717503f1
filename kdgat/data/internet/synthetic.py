"""Seeded synthetic network flows, written as labelled Zeek conn.log files.

An office network: 40 clients and four internal servers (DNS, intranet web, file, SSH/mail)
talking to each other and to 60 Internet servers (DNS, HTTPS and file traffic with lognormal
sizes and durations), plus multicast discovery chatter labelled Background (unlabelled, as in
the Stratosphere captures). Attacks come in bursts at random times:
- portscan: one external host probes many ports of an internal host (SYNs, mostly unanswered);
- ddos: dozens of external hosts flood the intranet web server;
- ssh_bruteforce: one external host opens login after login to the SSH server;
- cc_beacon: an infected client calls one Internet host back at a fixed period with jitter.
Rows are written in connection end order, as Zeek writes them, and read back through the real
Zeek reader, so the real path runs offline.
"""

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np

from kdgat.common.io import atomic_write_bytes

GENERATOR_VERSION = 1
CAPTURES = 3
ATTACKS: tuple[str, ...] = ("portscan", "ddos", "ssh_bruteforce", "cc_beacon")
HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n"
    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\t"
    "orig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\t"
    "orig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\tlabel\tdetailedlabel\n"
    "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\t"
    "bool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\tstring\tstring\n"
)
CLIENTS = [f"192.168.1.{i}" for i in range(10, 50)]
DNS, WEB, FILES, SSH = "192.168.1.2", "192.168.1.3", "192.168.1.4", "192.168.1.5"
PROTO = ("tcp", "udp", "icmp")


def _internet_hosts(rng: np.random.Generator, n: int, first_octets: tuple[int, ...]) -> list[str]:
    octets = rng.integers(1, 255, size=(n, 3))
    return [f"{first_octets[i % len(first_octets)]}.{a}.{b}.{c}" for i, (a, b, c) in enumerate(octets)]


class _Table:
    """Columns of generated flows, appended in blocks."""

    def __init__(self) -> None:
        self.parts: list[dict[str, np.ndarray]] = []

    def add(self, n: int, **columns) -> None:
        self.parts.append({k: np.broadcast_to(np.asarray(v), (n,)).copy() for k, v in columns.items()})

    def cat(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate([p[k] for p in self.parts]) for k in self.parts[0]}


def _benign(rng: np.random.Generator, table: _Table, n: int, duration: float, servers: list[str]) -> None:
    kinds = rng.choice(5, size=n, p=[0.3, 0.35, 0.15, 0.1, 0.1])
    t = np.sort(rng.uniform(0, duration, n))
    client = rng.choice(CLIENTS, size=n)
    dst = np.where(
        kinds == 0,
        DNS,
        np.where(
            kinds == 1,
            rng.choice(servers, size=n),
            np.where(kinds == 2, WEB, np.where(kinds == 3, FILES, SSH)),
        ),
    )
    port = np.choose(kinds, [53, 443, 80, 445, 22])
    proto = np.where(kinds == 0, "udp", "tcp")
    size = rng.lognormal(np.choose(kinds, [3.7, 7.0, 6.0, 9.0, 7.5]), 0.8)
    reply = size * rng.lognormal(np.choose(kinds, [0.9, 2.2, 2.0, 0.5, 0.7]), 0.6)
    dur = rng.lognormal(np.choose(kinds, [-4.5, -0.5, -1.5, 0.5, 1.0]), 0.7)
    pkts = np.maximum(1, (size / 500).astype(int) + rng.integers(1, 4, n))
    rpkts = np.maximum(1, (reply / 900).astype(int) + rng.integers(0, 3, n))
    table.add(
        n,
        t=t,
        src=client,
        sport=rng.integers(49152, 65535, n),
        dst=dst,
        dport=port,
        proto=proto,
        dur=dur,
        ob=size.astype(int),
        rb=reply.astype(int),
        op=pkts,
        rp=rpkts,
        label="Benign",
        detail="-",
    )
    m = max(1, n // 20)  # multicast discovery chatter: unlabelled Background
    table.add(
        m,
        t=rng.uniform(0, duration, m),
        src=rng.choice(CLIENTS, m),
        sport=5353,
        dst="224.0.0.251",
        dport=5353,
        proto="udp",
        dur=0.0,
        ob=rng.integers(40, 300, m),
        rb=0,
        op=1,
        rp=0,
        label="Background",
        detail="-",
    )


def _attack(
    rng: np.random.Generator, table: _Table, kind: str, start: float, n: int, servers: list[str]
) -> None:
    attacker = _internet_hosts(rng, 1, (45, 185, 193))[0]
    if kind == "portscan":
        t = start + np.cumsum(rng.exponential(0.05, n))
        answered = rng.random(n) < 0.1
        table.add(
            n,
            t=t,
            src=attacker,
            sport=rng.integers(30000, 65000),
            dst=rng.choice([*CLIENTS, WEB, FILES]),
            dport=rng.integers(1, 65535, n),
            proto="tcp",
            dur=np.where(answered, 1e-4, 0.0),
            ob=0,
            rb=0,
            op=rng.integers(1, 3, n),
            rp=answered.astype(int),
            label="Malicious",
            detail=kind,
        )
    elif kind == "ddos":
        sources = _internet_hosts(rng, 40, (23, 77, 91, 103))
        t = start + np.cumsum(rng.exponential(0.01, n))
        table.add(
            n,
            t=t,
            src=rng.choice(sources, n),
            sport=rng.integers(1024, 65535, n),
            dst=WEB,
            dport=80,
            proto="tcp",
            dur=rng.exponential(0.5, n),
            ob=rng.integers(0, 400, n),
            rb=rng.integers(0, 200, n),
            op=rng.integers(1, 6, n),
            rp=rng.integers(0, 3, n),
            label="Malicious",
            detail=kind,
        )
    elif kind == "ssh_bruteforce":
        t = start + np.cumsum(rng.exponential(0.5, n))
        table.add(
            n,
            t=t,
            src=attacker,
            sport=rng.integers(30000, 65000, n),
            dst=SSH,
            dport=22,
            proto="tcp",
            dur=rng.uniform(1.0, 3.0, n),
            ob=rng.integers(1200, 2200, n),
            rb=rng.integers(1800, 3000, n),
            op=rng.integers(10, 16, n),
            rp=rng.integers(9, 14, n),
            label="Malicious",
            detail=kind,
        )
    else:  # cc_beacon: a short call-home session, not hours of it
        n = min(n, 40)
        t = start + 30.0 * np.arange(n) + rng.normal(0, 1.5, n)
        table.add(
            n,
            t=t,
            src=rng.choice(CLIENTS),
            sport=rng.integers(49152, 65535, n),
            dst=_internet_hosts(rng, 1, (41, 62))[0],
            dport=8080,
            proto="tcp",
            dur=rng.uniform(0.05, 0.2, n),
            ob=rng.integers(150, 260, n),
            rb=rng.integers(200, 400, n),
            op=3,
            rp=3,
            label="Malicious",
            detail=kind,
        )


def generate_capture(num_flows: int, seed: int) -> bytes:
    """One capture of about num_flows flows as Zeek conn.log.labeled text."""
    rng = np.random.default_rng(seed)
    servers = _internet_hosts(np.random.default_rng(99), 60, (8, 13, 34, 52, 104, 142, 151))
    table = _Table()
    attack_flows = num_flows // 4
    duration = 4.0 * (num_flows - attack_flows)  # benign: one flow every 4 s network-wide
    _benign(
        rng, table, num_flows - attack_flows - max(1, (num_flows - attack_flows) // 20), duration, servers
    )
    bursts = 8
    for k, start in enumerate(np.sort(rng.uniform(0, duration * 0.95, bursts))):
        _attack(rng, table, ATTACKS[k % len(ATTACKS)], float(start), max(2, attack_flows // bursts), servers)
    f = table.cat()
    ts = 1_650_000_000.0 + seed * 100_000.0 + f["t"]
    order = np.argsort(ts + f["dur"], kind="stable")  # Zeek writes a connection when it ends
    lines = [HEADER]
    for i in order.tolist():
        state = "S0" if f["rp"][i] == 0 else "SF"
        op, rp, ob, rb = int(f["op"][i]), int(f["rp"][i]), int(f["ob"][i]), int(f["rb"][i])
        lines.append(
            f"{ts[i]:.6f}\tC{seed:x}{i:07d}\t{f['src'][i]}\t{int(f['sport'][i])}\t{f['dst'][i]}\t"
            f"{int(f['dport'][i])}\t{f['proto'][i]}\t-\t{float(f['dur'][i]):.6f}\t{ob}\t{rb}\t{state}\t"
            f"-\t-\t0\t-\t{op}\t{op * 40 + ob}\t{rp}\t{rp * 40 + rb}\t(empty)\t"
            f"{f['label'][i]}\t{f['detail'][i]}\n"
        )
    return "".join(lines).encode()


def synthetic_root(cache_dir: Path, flows_per_capture: int, seed: int) -> Path:
    """Write (once) CAPTURES synthetic captures into one flat folder; return it."""
    params = dict(version=GENERATOR_VERSION, flows=flows_per_capture, seed=seed, captures=CAPTURES)
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    root = Path(cache_dir) / "synthetic_internet" / digest
    for k in range(CAPTURES):
        path = root / f"capture_{k + 1}_conn.log.labeled.gz"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(
                path, gzip.compress(generate_capture(flows_per_capture, seed * 10 + k), mtime=0)
            )
    return root
