"""The native (numba) GAT scorer equals the exported plain-torch model on real hcrl_sa window
graphs, for every architecture knob it reads (JK mode, pooling, edge features, layers, heads,
head depth), on the edge cases of PyG's self-loop handling, and after a save/load round trip;
it refuses the runs it does not cover."""

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from configs import ExperimentConfig, ModelConfig
from kdgat.common.errors import UserError
from kdgat.config.resolve import resolve
from kdgat.data.automotive.graphs import build_graphs
from kdgat.data.automotive.readers import read_frames
from kdgat.data.graphset import UNKNOWN_ID
from kdgat.deploy.native import UNKNOWN, NativeGAT, load_native, native_weights, save_native
from kdgat.deploy.plain import ExportedGraphModel
from kdgat.models import build_graph_model
from tests.helpers import REPO, shared_data

pytestmark = pytest.mark.real_data


# A slice of a real capture with benign and DoS traffic (see tests/e2e/test_deploy.py).
CAPTURE = ("test_01_known_vehicle_known_attack", "DoS-sonata.csv.gz", 37000, 3000)


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory):
    folder, name, start, count = CAPTURE
    with gzip.open(shared_data("hcrl_sa") / folder / name, "rt") as handle:
        lines = handle.read().splitlines()
    path = tmp_path_factory.mktemp("native") / name.removesuffix(".gz")
    path.write_text("\n".join([lines[0], *lines[1 + start : 1 + start + count]]) + "\n")
    frames = read_frames(path, "can4")
    seen = np.unique(frames.can_id).tolist()
    # Every third ID left out of the vocabulary: those nodes take the unknown row (index 0).
    vocabulary = {can_id: k + 1 for k, can_id in enumerate(seen[1::3] + seen[2::3])}
    raw = build_graphs(frames, 0, len(frames), 100, 100, vocabulary)
    normalisation = {
        "x_mean": raw.x.mean(0).tolist(),
        "x_std": (raw.x.std(0) + 1e-3).tolist(),
        "edge_mean": raw.edge_attr.mean(0).tolist(),
        "edge_std": (raw.edge_attr.std(0) + 1e-3).tolist(),
    }
    out = []
    for g in range(len(raw)):
        n0, n1, e0, e1 = raw.node_ptr[g], raw.node_ptr[g + 1], raw.edge_ptr[g], raw.edge_ptr[g + 1]
        out.append(
            (
                raw.x[n0:n1].numpy(),
                raw.node_id[n0:n1].numpy(),
                raw.edge_index[:, e0:e1].numpy(),
                raw.edge_attr[e0:e1].numpy(),
            )
        )
    assert any((e[0] == e[1]).any() for _, _, e, _ in out)  # the real graphs hold self-loops
    assert any((i == 0).any() for _, i, _, _ in out)  # and unknown IDs
    return out, normalisation, len(vocabulary) + 1


def _exported(
    num_ids: int, normalisation, windows=(), size: str = "tiny", seed: int = 0, **knobs
) -> ExportedGraphModel:
    """A GAT classifier with random weights spread wide (so attention is far from uniform and
    LayerNorm's affine terms matter), as the exporter wraps it; with windows, its last layer
    rescaled so that their logit differences have mean 0 and std 1 (scores that spread)."""
    cfg = resolve(
        ExperimentConfig(dataset="hcrlsa", model_size=size, device="cpu", model_config=ModelConfig(**knobs))
    )
    torch.manual_seed(seed)
    node_dim, edge_dim = len(normalisation["x_mean"]), len(normalisation["edge_mean"])
    model = build_graph_model(cfg, num_ids, node_dim, edge_dim)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.6)
    module = ExportedGraphModel(model, normalisation).eval()
    if windows:
        last = model.head[-1]
        seen: list[torch.Tensor] = []
        hook = last.register_forward_hook(lambda _m, args, _out: seen.append(args[0]))
        _scores(module, windows)
        hook.remove()
        with torch.no_grad():
            diff = torch.cat(seen) @ (last.weight[1] - last.weight[0])
            last.weight.div_(diff.std())
            last.bias.copy_(torch.tensor([0.0, -float(diff.mean() / diff.std())]))
    return module


def _scores(scorer, graphs) -> np.ndarray:
    with torch.no_grad():
        return np.asarray([float(scorer(*(torch.from_numpy(a) for a in g))[0]) for g in graphs])


def _native_scores(native: NativeGAT, graphs) -> np.ndarray:
    return np.asarray([native(*g)[0] for g in graphs])


VARIANTS = [
    dict(),  # the defaults: JK cat, mean_max pooling, edge features, a 2-layer head
    dict(jk_mode="max"),
    dict(pooling="mean"),
    dict(pooling="max"),
    dict(pooling="add"),
    dict(use_edge_features=False),
    dict(head_layers=1),
    dict(head_layers=3),
]


def _variant_id(knobs: dict) -> str:
    return ",".join(f"{a}={b}" for a, b in knobs.items()) or "defaults"


@pytest.mark.parametrize("knobs", VARIANTS, ids=_variant_id)
def test_native_scores_equal_the_exported_model(graphs, knobs) -> None:
    windows, normalisation, num_ids = graphs
    module = _exported(num_ids, normalisation, windows, **knobs)
    want = _scores(module, windows)
    got = _native_scores(NativeGAT(native_weights(module)), windows)
    assert want.std() > 0.1  # the scores spread: a kernel that ignored its input would fail
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("size", ["student", "teacher"])  # 3 layers, 8 heads, 128 hidden
def test_native_scores_equal_the_exported_model_at_larger_sizes(graphs, size: str) -> None:
    windows, normalisation, num_ids = graphs
    module = _exported(num_ids, normalisation, windows[:10], size=size, seed=1)
    got = _native_scores(NativeGAT(native_weights(module)), windows[:10])
    np.testing.assert_allclose(got, _scores(module, windows[:10]), rtol=0, atol=1e-5)


def test_self_loops_isolated_nodes_and_a_single_node(graphs) -> None:
    """PyG drops a graph's own loops and gives every node one loop whose features are the mean
    of its incoming edges' (none: zeros); a node with no incoming edge attends only to itself;
    a graph may have no edge at all."""
    _, normalisation, num_ids = graphs
    rng = np.random.default_rng(0)
    f, fe = len(normalisation["x_mean"]), len(normalisation["edge_mean"])
    cases = [
        # node 0: no incoming edge; node 1: a loop and one edge in; node 2: only its own loop
        (3, [[0, 1, 2, 1], [1, 1, 2, 0]]),
        (1, [[0], [0]]),  # one node, its own loop only
        (4, [[0, 0, 0], [1, 2, 3]]),  # a star: three nodes with one edge in, the hub with none
        (2, [[], []]),  # no edges
    ]
    cut = []
    for n, edges in cases:
        edge_index = np.asarray(edges, np.int64).reshape(2, -1)
        cut.append(
            (
                rng.normal(0, 2, (n, f)).astype(np.float32),
                np.arange(n, dtype=np.int64) % num_ids,
                edge_index,
                rng.normal(0, 2, (edge_index.shape[1], fe)).astype(np.float32),
            )
        )
    module = _exported(num_ids, normalisation, cut, seed=2)  # calibrated on these graphs
    want = _scores(module, cut)
    assert ((want > 0.05) & (want < 0.95)).all()  # not saturated: a wrong kernel would show
    np.testing.assert_allclose(_native_scores(NativeGAT(native_weights(module)), cut), want, atol=1e-5)


def test_inputs_in_any_layout_score_alike_and_bad_shapes_are_refused(graphs) -> None:
    """Slices (the block path's edge_index[:, e0:e1]) and other dtypes are made contiguous in
    the kernel's dtypes; shapes that do not fit, or edges naming a node outside the graph, raise
    instead of reading past the arrays (the kernel does not check bounds)."""
    windows, normalisation, num_ids = graphs
    native = NativeGAT(native_weights(_exported(num_ids, normalisation, windows)))
    x, node_id, edge_index, edge_attr = windows[5]
    padded = np.repeat(edge_index, 2, axis=0)[::2]  # the same values, strided
    assert not padded.flags.c_contiguous
    want = native(x, node_id, edge_index, edge_attr)[0]
    assert native(x.astype(np.float64), node_id.astype(np.int32), padded, edge_attr)[0] == want
    bad = [
        (x[:, :-1], node_id, edge_index, edge_attr),  # 35 node features
        (x, node_id[:-1], edge_index, edge_attr),  # node_id shorter than x
        (x, node_id, edge_index, edge_attr[:-1]),  # one edge without features
        (x, node_id, edge_index, edge_attr[:, :2]),  # 2 edge features
        (x, node_id, edge_index[0], edge_attr),  # edge_index not (2, E)
    ]
    for graph in bad:
        with pytest.raises(ValueError, match="a window graph is x"):
            native(*graph)
    outside = edge_index.copy()
    outside[1, 0] = len(node_id)
    with pytest.raises(ValueError, match="outside the graph"):
        native(x, node_id, outside, edge_attr)


def test_native_model_round_trips_through_npz(graphs, tmp_path: Path) -> None:
    windows, normalisation, num_ids = graphs
    module = _exported(num_ids, normalisation, seed=3)
    weights = native_weights(module)
    path = tmp_path / "model_native.npz"
    written = {"threshold": 0.5, "window": 100, "stride": 100, "vocabulary": {"256": 1}}
    save_native(path, weights, written)
    meta, loaded = load_native(path)
    assert meta == written
    assert not list(tmp_path.glob("*.tmp*"))  # written atomically, nothing left beside it
    np.testing.assert_array_equal(
        _native_scores(loaded, windows[:20]), _native_scores(NativeGAT(weights), windows[:20])
    )
    score, node_score = loaded(*windows[0])
    assert isinstance(score, float) and node_score.shape == windows[0][1].shape and not node_score.any()
    # A detector host needs numpy and numba for it, not torch: loading and scoring import none.
    np.savez(tmp_path / "graph.npz", *windows[0])
    script = (
        "import sys, numpy as np\n"
        "from kdgat.deploy.native import load_native\n"
        f"meta, model = load_native({str(path)!r})\n"
        f"g = np.load({str(tmp_path / 'graph.npz')!r})\n"
        "print(model(*(g[f'arr_{k}'] for k in range(4)))[0])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) == score


def test_the_unknown_id_index_is_the_graph_sets() -> None:
    assert UNKNOWN == UNKNOWN_ID  # native.py keeps its own copy: graphset imports torch


def test_native_refuses_what_it_does_not_cover(graphs, tmp_path: Path) -> None:
    windows, normalisation, num_ids = graphs
    cfg = resolve(
        ExperimentConfig(
            dataset="hcrlsa",
            model_size="tiny",
            device="cpu",
            learning_type="unsupervised",
            model_architecture="VGAE",
            training_mode="normals_only",
        )
    )
    vgae = build_graph_model(cfg, num_ids, len(normalisation["x_mean"]), len(normalisation["edge_mean"]))
    with pytest.raises(UserError, match="GAT classifier runs only"):
        native_weights(ExportedGraphModel(vgae, normalisation))
    native = NativeGAT(native_weights(_exported(num_ids, normalisation)))
    x, node_id, edge_index, edge_attr = windows[0]
    with pytest.raises(ValueError, match="vocabulary"):
        native(x, np.full_like(node_id, num_ids), edge_index, edge_attr)
    bad = tmp_path / "model_native.npz"
    bad.write_bytes(b"not an npz")
    with pytest.raises(UserError, match="not a readable kdgat native model"):
        load_native(bad)
    np.savez(tmp_path / "plain.npz", a=np.zeros(1))
    with pytest.raises(UserError, match="without kdgat metadata"):
        load_native(tmp_path / "plain.npz")
    # A copy cut short (an interrupted transfer to the car), and an export missing a tensor.
    weights = native_weights(_exported(num_ids, normalisation))
    meta = {"threshold": 0.5, "window": 100, "stride": 100, "vocabulary": {}}
    save_native(tmp_path / "whole.npz", weights, meta)
    data = (tmp_path / "whole.npz").read_bytes()
    for size in (0, 100, len(data) // 2, len(data) - 10):
        (tmp_path / "cut.npz").write_bytes(data[:size])
        with pytest.raises(UserError, match="not a readable kdgat native model"):
            load_native(tmp_path / "cut.npz")
    save_native(tmp_path / "partial.npz", {k: v for k, v in weights.items() if k != "att"}, meta)
    with pytest.raises(UserError, match="lacks att"):
        load_native(tmp_path / "partial.npz")
    save_native(tmp_path / "no_vocabulary.npz", weights, {"threshold": 0.5, "window": 100, "stride": 1})
    with pytest.raises(UserError, match="lacks vocabulary"):
        load_native(tmp_path / "no_vocabulary.npz")
