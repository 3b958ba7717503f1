"""Host graphs from flows: the vectorised builder against a per-window reference written from the
definition (kdgat/data/internet/graphs.py's docstring), leak-free splits, addresses that are never
an identity, labels that agree with the flows, and the flow-level metrics on hand-worked cases."""

import bisect
import gzip
import ipaddress
import itertools
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

import configs
from configs import DatasetConfig, InternetConfig
from kdgat.data.dataset import load_splits
from kdgat.data.graphset import UNKNOWN_ID, empty_graph_set
from kdgat.data.internet.flows import Flows, host_flags
from kdgat.data.internet.graphs import EDGE_FEATURES, NODE_FEATURES, build_raw
from kdgat.data.internet.modality import INTERNET
from kdgat.data.internet.synthetic import generate_capture
from kdgat.data.internet.zeek import read_zeek
from kdgat.data.prepare import prepare_file
from kdgat.evaluation.flow_metrics import flow_metrics, flow_report, weighted_auroc, window_scores_on_edges
from tests.data.test_splits import assert_no_shared_frames
from tests.helpers import shared_data

STRATOSPHERE = "internet_stratosphere_zeek"
SME = "CTU-SME-11_win7_first5000pkts_conn.log.labeled.gz"  # 766 flows, 3 Unknown
NJRAT = "001_CTU-Malware-Capture-Botnet-230-1_first1000_conn.log.labeled.gz"  # 992 flows, IPv6, Background

# ---------------------------------------------------------------- a per-window reference builder


def reference_windows(
    time: np.ndarray,
    lo: int,
    hi: int,
    window: int,
    stride: int,
    seconds: float | None,
    stride_s: float | None,
) -> list[tuple[int, int]]:
    """[start, stop) of each window inside flows[lo:hi], by the definition: N flows stepping by
    stride, or the flows starting in [t0 + k*step, t0 + k*step + seconds) for k = 0, 1, ... while
    the window start is not past the block's last flow (empty windows give none)."""
    if seconds is None:
        return [(a, a + window) for a in range(lo, hi - window + 1, stride)]
    step = stride_s if stride_s is not None else seconds
    times = time[lo:hi].tolist()
    out, k = [], 0
    while times and k * step <= times[-1] - times[0]:
        begin = times[0] + step * k
        a = lo + bisect.bisect_left(times, begin)
        b = lo + bisect.bisect_left(times, begin + seconds)
        if b > a:
            out.append((a, b))
        k += 1
    return out


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def _majority(codes: list[int]) -> int:
    """The most frequent code, the smallest on ties; 0 (benign) when there is none."""
    if not codes:
        return 0
    best = max(codes.count(c) for c in set(codes))
    return min(c for c in set(codes) if codes.count(c) == best)


def reference_graph(f: Flows, a: int, b: int) -> dict | None:
    """The host graph of flows[a:b] with loops over flows, or None when no flow is labelled."""
    flows = range(a, b)
    if all(f.label[i] < 0 for i in flows):
        return None
    hosts: list[int] = []  # in order of first appearance, originator before responder
    for i in flows:
        for h in (int(f.src[i]), int(f.dst[i])):
            if h not in hosts:
                hosts.append(h)
    local = {h: k for k, h in enumerate(hosts)}
    log = math.log1p
    x, node_label = [], []
    for h in hosts:
        out = [i for i in flows if f.src[i] == h]
        into = [i for i in flows if f.dst[i] == h]
        ends = out + into  # a self-loop flow is one end of each kind
        x.append(
            [
                log(len(out)),
                log(len(into)),
                log(len({int(f.dst[i]) for i in out})),
                log(len({int(f.src[i]) for i in into})),
                log(sum(f.orig_bytes[i] for i in out) + sum(f.resp_bytes[i] for i in into)),
                log(sum(f.resp_bytes[i] for i in out) + sum(f.orig_bytes[i] for i in into)),
                log(sum(f.orig_pkts[i] for i in out) + sum(f.resp_pkts[i] for i in into)),
                log(sum(f.resp_pkts[i] for i in out) + sum(f.orig_pkts[i] for i in into)),
                log(len({int(f.dst_port[i]) for i in out})),
                log(len({int(f.dst_port[i]) for i in into})),
                log(len({int(f.src_port[i]) for i in out})),
                _mean(f.resp_pkts[i] == 0 for i in out),
                _mean(f.resp_pkts[i] == 0 for i in into),
                *(_mean(f.proto[i] == p for i in ends) for p in range(3)),
                _mean(log(max(f.duration[i], 0.0)) for i in ends),
                len(out) / len(ends),
                *(float(v) for v in f.host_flags[h]),
                min((i - a) / max(b - a - 1, 1) for i in ends),
            ]
        )
        node_label.append(int(any(f.label[i] == 1 for i in ends)))
    pairs: dict[tuple[int, int], list[int]] = {}
    for i in flows:
        pairs.setdefault((local[int(f.src[i])], local[int(f.dst[i])]), []).append(i)
    edges = sorted(pairs)
    attr, edge_label, edge_flows, edge_attack = [], [], [], []
    for pair in edges:
        mine = pairs[pair]
        times = [f.time[i] for i in mine]
        attr.append(
            [
                log(len(mine)),
                log(sum(f.orig_bytes[i] for i in mine)),
                log(sum(f.resp_bytes[i] for i in mine)),
                log(sum(f.orig_pkts[i] for i in mine)),
                log(sum(f.resp_pkts[i] for i in mine)),
                _mean(log(max(f.duration[i], 0.0)) for i in mine),
                _mean(f.resp_pkts[i] == 0 for i in mine),
                *(_mean(f.proto[i] == p for i in mine) for p in range(3)),
                log(len({int(f.dst_port[i]) for i in mine})),
                log(len({int(f.src_port[i]) for i in mine})),
                _mean(f.dst_port[i] < 1024 for i in mine),
                _mean(log(abs(t1 - t0) * 1e3) for t0, t1 in itertools.pairwise(times)),
            ]
        )
        labels = [int(f.label[i]) for i in mine]
        edge_label.append(1 if 1 in labels else 0 if 0 in labels else -1)
        edge_flows.append([labels.count(0), labels.count(1)])
        edge_attack.append(_majority([int(f.attack[i]) for i in mine if f.label[i] == 1]))
    malicious = [int(f.attack[i]) for i in flows if f.label[i] == 1]
    return {
        "x": np.array(x),
        "edge_index": np.array(edges, dtype=np.int64).reshape(-1, 2).T,
        "edge_attr": np.array(attr).reshape(-1, len(EDGE_FEATURES)),
        "edge_label": np.array(edge_label),
        "edge_flows": np.array(edge_flows),
        "edge_attack_id": np.array(edge_attack),
        "node_label": np.array(node_label),
        "node_entity": np.array(hosts),
        "y": int(bool(malicious)),
        "attack_id": _majority(malicious),
        "frame_start": a,
        "frame_stop": b,
        "time_start": f.time[a],
        "time_stop": f.time[b - 1],
    }


def per_window(raw: dict[str, np.ndarray]) -> list[dict]:
    """The builder's flat arrays cut into one dict per window, keyed as reference_graph's."""
    out = []
    for g in range(len(raw.get("y", ()))):
        nodes = slice(raw["node_ptr"][g], raw["node_ptr"][g + 1])
        edges = slice(raw["edge_ptr"][g], raw["edge_ptr"][g + 1])
        out.append(
            {
                **{k: raw[k][nodes] for k in ("x", "node_label", "node_entity")},
                **{k: raw[k][edges] for k in ("edge_attr", "edge_label", "edge_flows", "edge_attack_id")},
                "edge_index": raw["edge_index"][:, edges],
                **{k: raw[k][g] for k in ("y", "attack_id", "frame_start", "frame_stop")},
                **{k: raw[k][g] for k in ("time_start", "time_stop")},
            }
        )
    return out


def assert_same_graphs(expected: list[dict], got: list[dict]) -> None:
    assert len(got) == len(expected), f"{len(got)} windows, expected {len(expected)}"
    for k, (want, have) in enumerate(zip(expected, got, strict=True)):
        for key, value in want.items():
            a, b = np.asarray(value), np.asarray(have[key])
            assert a.shape == b.shape, f"window {k} {key}: shape {b.shape}, expected {a.shape}"
            if a.dtype.kind == "f":  # the builder stores float32
                np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5, err_msg=f"window {k} {key}")
            else:
                assert (a == b).all(), f"window {k} {key}: {b.tolist()}, expected {a.tolist()}"


@pytest.fixture(scope="module")
def synthetic_flows(tmp_path_factory: pytest.TempPathFactory) -> Flows:
    path = tmp_path_factory.mktemp("synthetic") / "capture_conn.log.labeled"
    path.write_bytes(generate_capture(1200, seed=3))
    return read_zeek(path)


WINDOWS = [  # (window, stride, window_seconds, stride_seconds)
    pytest.param(10, 10, None, None, id="10flows"),
    pytest.param(12, 5, None, None, id="12flows-stride5"),
    pytest.param(10, 10, 5.0, None, id="5s"),
    pytest.param(10, 10, 30.0, 10.0, id="30s-stride10s"),
]


@pytest.mark.parametrize(("window", "stride", "seconds", "stride_s"), WINDOWS)
@pytest.mark.parametrize("capture", [pytest.param("real", marks=pytest.mark.real_data), "synthetic"])
def test_vectorised_builder_equals_per_window_reference(
    synthetic_flows: Flows,
    capture: str,
    window: int,
    stride: int,
    seconds: float | None,
    stride_s: float | None,
) -> None:
    # 001 (NjRAT): IPv4 and IPv6 hosts, Background flows, windows of only Background.
    flows = read_zeek(shared_data(STRATOSPHERE) / NJRAT) if capture == "real" else synthetic_flows
    lo, hi = 7, len(flows) - 11  # a block inside the capture, as the splits cut them
    ranges = reference_windows(flows.time, lo, hi, window, stride, seconds, stride_s)
    expected = [g for g in (reference_graph(flows, a, b) for a, b in ranges) if g is not None]
    assert len(expected) > 20 and any(g["y"] for g in expected)
    if capture == "real":  # the unlabelled-only windows the builder must leave out do occur
        assert len(expected) < len(ranges)
    else:
        assert not all(g["y"] for g in expected)
    assert_same_graphs(expected, per_window(build_raw(flows, lo, hi, window, stride, seconds, stride_s)))


@pytest.mark.real_data
def test_short_time_windows_over_sparse_traffic_equal_the_reference() -> None:
    """CTU-SME-11: most of its 766 flows start in 2 s, the last ones 8 minutes later. Of the
    25,000 20 ms steps only those near a flow hold one; the builder must find exactly those."""
    flows = read_zeek(shared_data(STRATOSPHERE) / SME)
    ranges = reference_windows(flows.time, 0, len(flows), 10, 10, 0.05, 0.02)
    steps = (flows.time[-1] - flows.time[0]) / 0.02
    assert len(ranges) < steps / 10  # nine windows in ten are empty
    expected = [g for g in (reference_graph(flows, a, b) for a, b in ranges) if g is not None]
    assert_same_graphs(expected, per_window(build_raw(flows, 0, len(flows), 10, 10, 0.05, 0.02)))


def test_builder_widths_match_the_declared_features(synthetic_flows: Flows) -> None:
    raw = build_raw(synthetic_flows, 0, len(synthetic_flows), 10, 10)
    assert raw["x"].shape[1] == len(NODE_FEATURES) and raw["edge_attr"].shape[1] == len(EDGE_FEATURES)
    assert (
        raw["x"].dtype == np.float32 and np.isfinite(raw["x"]).all() and np.isfinite(raw["edge_attr"]).all()
    )


def test_a_block_shorter_than_a_window_gives_no_graph(synthetic_flows: Flows) -> None:
    assert build_raw(synthetic_flows, 100, 109, 10, 10) == {}
    assert build_raw(synthetic_flows, 100, 100, 10, 10, 5.0) == {}


# ---------------------------------------------------------------- leak-free splits


def internet_cfg(tmp_path: Path, dataset: str = "synthetic", **internet: object) -> configs.ExperimentConfig:
    knobs = {"synthetic_flows": 2000, **internet}
    return configs.ExperimentConfig(
        modality="internet",
        dataset=dataset,  # type: ignore[arg-type]
        dataset_config=DatasetConfig(
            data_root=shared_data(STRATOSPHERE) if dataset == "stratosphere" else None,
            cache_dir=tmp_path / "cache",
            internet=InternetConfig(**knobs),  # type: ignore[arg-type]
        ),
    )


def assert_windows_inside_their_blocks(cfg: configs.ExperimentConfig, splits) -> None:
    """Every window of every split lies inside one block of its own split (none crosses a cut)."""
    parts = {"train": splits.train, "val": splits.val, "test": splits.test_all}
    d = cfg.dataset_config
    for source in {s for g in parts.values() for s in g.source}:
        bounds = prepare_file(Path(source), "zeek", "train_val_test", d, INTERNET).bounds
        for role, graphs in parts.items():
            mine = torch.tensor([s == source for s in graphs.source], dtype=torch.bool)
            start, stop = graphs.frame_start[mine], graphs.frame_stop[mine]
            blocks = [bounds[r] for r in ([role, "train_tail"] if role == "train" else [role]) if r in bounds]
            inside = torch.zeros(len(start), dtype=torch.bool)
            for lo, hi in blocks:
                inside |= (start >= lo) & (stop <= hi)
            assert bool(inside.all()), f"{role} windows of {source} cross a block boundary"


SPLIT_CASES = [
    pytest.param("synthetic", {}, id="synthetic-default"),
    pytest.param("synthetic", {"window": 20, "stride": 7}, id="synthetic-overlapping"),
    pytest.param("stratosphere", {}, id="stratosphere", marks=pytest.mark.real_data),
    pytest.param(
        "stratosphere",
        {"window": 10, "stride": 4},
        id="stratosphere-overlapping",
        marks=pytest.mark.real_data,
    ),
    pytest.param(
        "stratosphere",
        {"window_seconds": 600.0, "stride_seconds": 300.0},
        id="stratosphere-10min",
        marks=pytest.mark.real_data,
    ),
]


@pytest.mark.parametrize(("dataset", "internet"), SPLIT_CASES)
def test_no_flow_in_two_splits_and_no_window_crosses_a_boundary(
    tmp_path: Path, dataset: str, internet: dict
) -> None:
    cfg = internet_cfg(tmp_path, dataset, **internet)
    splits = load_splits(cfg)
    assert len(splits.train) and len(splits.val) and all(len(g) for g in splits.test.values())
    assert_no_shared_frames(splits)
    assert_windows_inside_their_blocks(cfg, splits)
    starts = splits.train.frame_start[:2].tolist()
    if internet.get("stride", 10) < internet.get("window", 10):  # overlap inside a split: not vacuous
        assert starts[1] - starts[0] == internet["stride"]


# ---------------------------------------------------------------- addresses are never an identity


def _same_kind(address: str, rng: random.Random) -> str:
    """A random address with the same behavioural flags (private, IPv6, multicast) as address."""
    ip = ipaddress.ip_address(address)
    want = host_flags([address])[0].tolist()
    if str(ip) == "255.255.255.255":
        return address  # the only broadcast address: it can only map to itself
    for _ in range(10_000):
        if ip.version == 4:
            first = rng.choice([10, 192, 172, rng.randint(1, 223), rng.randint(224, 239)])
            candidate = f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        else:
            prefix = rng.choice(["fd", "fe80:", "2a0", "ff02:"])
            candidate = prefix + ":".join(f"{rng.randint(0, 0xFFFF):x}" for _ in range(3)) + "::1"
        try:
            if host_flags([candidate])[0].tolist() == want:
                return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    raise AssertionError(f"no address like {address} found")


def rename_hosts(text: str, seed: int) -> tuple[str, dict[str, str]]:
    """The conn.log with every address replaced, consistently, by another of the same kind."""
    lines = text.splitlines(keepends=True)
    names = next(line for line in lines if line.startswith("#fields")).rstrip("\n").split("\t")[1:]
    ends = [names.index("id.orig_h"), names.index("id.resp_h")]
    rng, mapping = random.Random(seed), {}
    out = []
    for line in lines:
        if line.startswith("#"):
            out.append(line)
            continue
        fields = line.rstrip("\n").split("\t")
        for j in ends:
            if fields[j] not in mapping:
                new = _same_kind(fields[j], rng)
                while new in mapping.values():
                    new = _same_kind(fields[j], rng)
                mapping[fields[j]] = new
            fields[j] = mapping[fields[j]]
        out.append("\t".join(fields) + "\n")
    return "".join(out), mapping


@pytest.mark.real_data
@pytest.mark.parametrize("name", [NJRAT, SME])
def test_renaming_every_address_leaves_the_graphs_unchanged(tmp_path: Path, name: str) -> None:
    original = shared_data(STRATOSPHERE) / name
    renamed_text, mapping = rename_hosts(gzip.decompress(original.read_bytes()).decode(), seed=1)
    renamed = tmp_path / name
    renamed.write_bytes(gzip.compress(renamed_text.encode()))
    d = DatasetConfig(cache=False, internet=InternetConfig(window=10, stride=5))
    graphs = []
    for path in (original, renamed):
        flows = INTERNET.read(path, "zeek", d)
        graphs.append(per_window(INTERNET.build(flows, 0, len(flows), d)))
    before, after = graphs
    # The host table is sorted by address text, so a renaming reorders it: the check is not vacuous.
    assert any((a["node_entity"] != b["node_entity"]).any() for a, b in zip(before, after, strict=True))
    for graph in before:
        del graph["node_entity"]  # an index into the capture's host table, never a feature
    assert_same_graphs(before, after)
    assert sorted(mapping) != sorted(mapping.values())


def test_every_node_id_is_unknown_and_no_vocabulary_is_learned(tmp_path: Path) -> None:
    splits = load_splits(internet_cfg(tmp_path))
    assert splits.vocabulary == {} and splits.num_ids == 1
    for store in (splits.train, splits.val, *splits.test.values()):
        graphs = store.materialise()
        assert (graphs.node_id == UNKNOWN_ID).all()
        assert graphs.x.shape[1] == store.node_dim == len(NODE_FEATURES)  # no is_unknown_id column either


# ---------------------------------------------------------------- labels agree with the flows


@pytest.mark.parametrize("capture", [pytest.param("real", marks=pytest.mark.real_data), "synthetic"])
def test_window_and_edge_labels_agree_with_the_flows(synthetic_flows: Flows, capture: str) -> None:
    flows = read_zeek(shared_data(STRATOSPHERE) / NJRAT) if capture == "real" else synthetic_flows
    raw = build_raw(flows, 0, len(flows), 10, 10)
    windows = per_window(raw)
    assert {int(g["y"]) for g in windows} == {0, 1}
    for g in windows:
        labels = flows.label[g["frame_start"] : g["frame_stop"]]
        assert g["y"] == int((labels == 1).any())  # an attack if any of its flows is malicious
        # Every labelled flow of the window is in exactly one edge's counts; unlabelled in none.
        assert g["edge_flows"][:, 0].sum() == (labels == 0).sum()
        assert g["edge_flows"][:, 1].sum() == (labels == 1).sum()
        expected = np.where(g["edge_flows"][:, 1] > 0, 1, np.where(g["edge_flows"][:, 0] > 0, 0, -1))
        assert (g["edge_label"] == expected).all()
        attack_nodes = np.unique(g["edge_index"][:, g["edge_label"] == 1])
        assert sorted(np.flatnonzero(g["node_label"]).tolist()) == attack_nodes.tolist()
        if g["y"]:
            names = flows.attack_names[g["attack_id"]]
            assert names != "benign" and g["attack_id"] in flows.attack[g["frame_start"] : g["frame_stop"]]
        else:
            assert g["attack_id"] == 0


# ---------------------------------------------------------------- flow-level metrics by hand


def test_flow_confusion_matrix_counts_flows_not_edges() -> None:
    scores = np.array([0.9, 0.2, 0.6, 0.4])
    flows = np.array([[1, 3], [2, 0], [0, 1], [4, 1]])  # (benign, attack) flows per edge
    out = flow_metrics(scores, flows, 0.5)
    # Flagged edges 0 and 2: 3 + 1 attack flows caught, 1 benign flow flagged; edges 1 and 3 let
    # 1 attack flow through and clear 2 + 4 benign ones.
    assert out["confusion_matrix"] == {"tn": 6, "fp": 1, "fn": 1, "tp": 4}
    assert (out["n_flows"], out["n_attack_flows"]) == (12, 5)
    assert out["precision"] == pytest.approx(4 / 5) and out["recall"] == pytest.approx(4 / 5)
    assert out["f1"] == pytest.approx(0.8) and out["benign_fpr"] == pytest.approx(1 / 7)
    # (attack flow, benign flow) pairs ranked right, ties half, of 5 x 7: each of the 3 attack
    # flows at 0.9 beats the 6 benign flows at 0.2 and 0.4 and ties 1 (3 x 6.5); the one at 0.6
    # beats 6; the one at 0.4 beats 2 and ties 4 (4): 19.5 + 6 + 4 = 29.5.
    assert out["auroc"] == pytest.approx(29.5 / 35)


def test_flag_everything_floor() -> None:
    out = flow_metrics(np.array([0.1, 0.7]), np.array([[9, 1], [0, 2]]), 0.5)
    share = 3 / 12
    assert out["flag_all"]["precision"] == pytest.approx(share) and out["flag_all"]["recall"] == 1.0
    assert out["flag_all"]["f1"] == pytest.approx(2 * share / (1 + share))
    # A detector that flags everything scores exactly its own floor.
    flagged = flow_metrics(np.array([0.9, 0.9]), np.array([[9, 1], [0, 2]]), 0.5)
    assert flagged["f1"] == pytest.approx(out["flag_all"]["f1"]) and flagged["benign_fpr"] == 1.0


def brute_force_auroc(scores: np.ndarray, flows: np.ndarray) -> float:
    """Every (attack flow, benign flow) pair, one at a time: 1 if the attack scores higher, 1/2 on ties."""
    attack = [s for s, n in zip(scores, flows[:, 1], strict=True) for _ in range(int(n))]
    benign = [s for s, n in zip(scores, flows[:, 0], strict=True) for _ in range(int(n))]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in attack for b in benign)
    return wins / (len(attack) * len(benign))


@pytest.mark.parametrize("seed", range(5))
def test_weighted_auroc_equals_a_brute_force_pair_count(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random(40), 1)  # rounded: many ties
    flows = rng.integers(0, 4, size=(40, 2))
    expected = brute_force_auroc(scores, flows)
    assert weighted_auroc(scores, flows[:, 1], flows[:, 0]) == pytest.approx(expected, abs=1e-12)


def test_auroc_is_undefined_without_both_classes() -> None:
    assert weighted_auroc(np.array([0.3, 0.8]), np.array([1.0, 2.0]), np.array([0.0, 0.0])) is None
    assert flow_metrics(np.array([0.3]), np.array([[4, 0]]), 0.5)["auroc"] is None


def test_per_type_recall_counts_flows_of_each_edges_majority_type() -> None:
    scores = np.array([0.9, 0.1, 0.8, 0.3])
    flows = np.array([[0, 3], [0, 1], [1, 2], [5, 0]])
    out = flow_metrics(scores, flows, 0.5, ["ddos", "ddos", "portscan", "benign"])
    assert out["attack_types"] == {
        "ddos": {"n_flows": 4, "recall": pytest.approx(3 / 4)},
        "portscan": {"n_flows": 2, "recall": 1.0},
    }


def test_an_empty_test_set_scores_no_flow() -> None:
    """A capture whose test block holds no full window (CICIDS Heartbleed: 11 flows) gives an
    empty graph set without edge parts; its flow report counts nothing instead of failing."""
    empty = empty_graph_set(len(NODE_FEATURES), len(EDGE_FEATURES))
    out = flow_report(empty, np.zeros(0), 0.5, "edge_readout")
    assert (out["n_flows"], out["auroc"], out["scored_by"]) == (0, None, "edge_readout")
    assert out["confusion_matrix"] == {"tn": 0, "fp": 0, "fn": 0, "tp": 0} and out["attack_types"] == {}


def test_window_scores_spread_to_every_edge_of_the_window(tmp_path: Path) -> None:
    graphs = load_splits(internet_cfg(tmp_path)).val
    scores = np.arange(len(graphs), dtype=np.float64)
    on_edges = window_scores_on_edges(graphs, scores)
    counts = (graphs.edge_ptr[1:] - graphs.edge_ptr[:-1]).numpy()
    assert len(on_edges) == int(graphs.edge_ptr[-1])
    assert (on_edges == np.repeat(scores, counts)).all()


def test_window_decisions_on_flows_match_window_counts_when_windows_are_pure(tmp_path: Path) -> None:
    """With every window scored by its own label, flagged flows are exactly the flows of attack
    windows: the flow-level figures follow from the windows' flow counts."""
    graphs = load_splits(internet_cfg(tmp_path)).test_all
    window_scores = graphs.y.double().numpy()
    out = flow_metrics(window_scores_on_edges(graphs, window_scores), graphs.edge_flows.numpy(), 0.5)
    per_window_flows = torch.zeros(len(graphs), 2)
    graph_of_edge = torch.repeat_interleave(
        torch.arange(len(graphs)), graphs.edge_ptr[1:] - graphs.edge_ptr[:-1]
    )
    per_window_flows.index_add_(0, graph_of_edge, graphs.edge_flows.float())
    attack_windows = graphs.y == 1
    assert out["confusion_matrix"]["tp"] == int(per_window_flows[attack_windows, 1].sum())
    assert out["confusion_matrix"]["fp"] == int(per_window_flows[attack_windows, 0].sum())
    assert out["confusion_matrix"]["fn"] == 0  # an attack flow makes its window an attack
    assert out["confusion_matrix"]["tn"] == int(per_window_flows[~attack_windows, 0].sum())
