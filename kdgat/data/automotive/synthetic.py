"""Seeded synthetic CAN traffic, written in the real 4-column layout.

Benign traffic: a fixed set of ECUs, each sending one ID periodically with jitter; payloads carry
a rolling counter, slowly varying signals and a checksum byte. Attacks are injected in bursts:
DoS (flood of the highest-priority ID 0x000), fuzzing (random IDs and payloads) and spoofing
(one legitimate ID at a high rate with a forged constant payload). The files are read back
through the same reader as real captures, so the real path is exercised end to end.
"""

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np

from kdgat.common.io import atomic_write_bytes

ATTACKS: tuple[str, ...] = ("dos", "fuzzing", "spoofing")
# Data-format version: bump when the generator changes so cached logs are regenerated.
GENERATOR_VERSION = 1


def _benign(rng: np.random.Generator, duration: float) -> tuple[np.ndarray, ...]:
    ecu_rng = np.random.default_rng(12345)  # the vehicle is the same in every split
    ids = np.sort(ecu_rng.choice(np.arange(0x080, 0x700), size=24, replace=False))
    periods = ecu_rng.choice([0.01, 0.02, 0.05, 0.1, 0.2], size=len(ids))
    dlcs = ecu_rng.choice([4, 6, 8], size=len(ids))
    times, can_ids, payloads, lengths = [], [], [], []
    for can_id, period, dlc in zip(ids, periods, dlcs, strict=True):
        n = int(duration / period)
        t = rng.uniform(0, period) + np.arange(n) * period + rng.normal(0, period * 0.02, n)
        payload = np.zeros((n, 8), dtype=np.uint8)
        payload[:, 0] = np.arange(n) % 256  # rolling counter
        phase = rng.uniform(0, 2 * np.pi)
        signal = 128 + 100 * np.sin(phase + t / (5 + can_id % 7))
        payload[:, 1] = signal.astype(np.uint8)
        payload[:, 2] = (signal * 7 % 256).astype(np.uint8)
        payload[:, 3] = can_id % 256
        payload[:, 4 : dlc - 1] = (can_id * 31 % 256) & 0xF0
        payload[:, dlc - 1] = payload[:, : dlc - 1].sum(axis=1) % 256  # checksum
        payload[:, dlc:] = 0
        times.append(t)
        can_ids.append(np.full(n, can_id))
        payloads.append(payload)
        lengths.append(np.full(n, dlc))
    return (np.concatenate(times), np.concatenate(can_ids), np.concatenate(payloads), np.concatenate(lengths))


def _attack_bursts(
    rng: np.random.Generator, duration: float, legit_ids: np.ndarray, kind: str
) -> tuple[np.ndarray, ...]:
    times, can_ids, payloads = [], [], []
    t = rng.uniform(0.5, 2.0)
    while t < duration - 1.0:
        length = rng.uniform(0.2, 0.8)
        if kind == "dos":
            burst = np.arange(t, t + length, 0.0004)
            ids = np.zeros(len(burst), dtype=np.int64)
            data = np.zeros((len(burst), 8), dtype=np.uint8)
        elif kind == "fuzzing":
            burst = np.arange(t, t + length, 0.001)
            ids = rng.integers(0, 0x800, len(burst))
            data = rng.integers(0, 256, (len(burst), 8)).astype(np.uint8)
        else:
            burst = np.arange(t, t + length, 0.001)
            ids = np.full(len(burst), rng.choice(legit_ids))
            data = np.tile(rng.integers(0, 256, 8).astype(np.uint8), (len(burst), 1))
        times.append(burst)
        can_ids.append(ids)
        payloads.append(data)
        t += length + rng.uniform(1.0, 4.0)
    if not times:
        return np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros((0, 8), dtype=np.uint8), np.zeros(0)
    stamps = np.concatenate(times)
    return stamps, np.concatenate(can_ids), np.concatenate(payloads), np.full(len(stamps), 8)


def _to_csv(
    time: np.ndarray, can_id: np.ndarray, payload: np.ndarray, label: np.ndarray, dlc: np.ndarray
) -> bytes:
    hex_payload = [row[:n].tobytes().hex().upper() for row, n in zip(payload, dlc, strict=True)]
    lines = [
        f"{t:.6f},{i:03X},{p},{y}"
        for t, i, p, y in zip(time.tolist(), can_id.tolist(), hex_payload, label.tolist(), strict=True)
    ]
    return ("timestamp,arbitration_id,data_field,attack\n" + "\n".join(lines) + "\n").encode()


def generate_log(num_frames: int, seed: int, attack: str | None) -> bytes:
    """A 4-column CSV of exactly num_frames frames, with bursts of `attack` (None: benign)."""
    rng = np.random.default_rng(seed)
    benign_rate = 24 / 0.05  # rough frames per second of the benign bus, refined below
    duration = num_frames / benign_rate
    while True:
        t, ids, data, dlc = _benign(rng, duration)
        label = np.zeros(len(t), dtype=np.int8)
        if attack is not None:
            at, aid, adata, adlc = _attack_bursts(rng, duration, np.unique(ids), attack)
            t, ids = np.concatenate([t, at]), np.concatenate([ids, aid])
            data, dlc = np.concatenate([data, adata]), np.concatenate([dlc, adlc])
            label = np.concatenate([label, np.ones(len(at), dtype=np.int8)])
        if len(t) >= num_frames:
            break
        duration *= 1.5 * num_frames / max(len(t), 1)
    order = np.argsort(t, kind="stable")[:num_frames]
    t, ids, data, label, dlc = t[order], ids[order], data[order], label[order], dlc[order]
    return _to_csv(1_700_000_000.0 + t - t.min(), ids, data, label, dlc)


def synthetic_root(cache_dir: Path, train_frames: int, test_frames: int, seed: int) -> Path:
    """Write (once) the synthetic dataset in the can-train-and-test folder layout; return its root."""
    params = dict(version=GENERATOR_VERSION, train=train_frames, test=test_frames, seed=seed)
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    root = Path(cache_dir) / "synthetic" / digest
    per_attack_train = (train_frames - train_frames // 4) // len(ATTACKS)
    layout: dict[str, tuple[int, int, str | None]] = {
        "train_01_attack_free/attack-free.csv.gz": (train_frames // 4, seed, None)
    }
    for k, attack in enumerate(ATTACKS):
        layout[f"train_02_with_attacks/{attack}.csv.gz"] = (per_attack_train, seed + 1 + k, attack)
        layout[f"test_01_known_vehicle_known_attack/{attack}.csv.gz"] = (
            test_frames // len(ATTACKS),
            seed + 11 + k,
            attack,
        )
    for relative, (frames, file_seed, file_attack) in layout.items():
        path = root / relative
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, gzip.compress(generate_log(frames, file_seed, file_attack), mtime=0))
    return root
