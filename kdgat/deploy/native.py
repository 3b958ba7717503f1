"""A GAT classifier's scoring path as one compiled (numba) call per window graph.

On one window graph of a tiny student (~20 nodes, 16 hidden units) the arithmetic is a few tens
of thousands of multiply-adds, microseconds of work; ONNX Runtime and eager torch spend
hundreds of microseconds per call on dispatch, allocation and the one-hot incidence matmuls
plain.py needs to be traceable. Here the same model (normalisation and clip, input layer with
the CAN-ID embedding, GATv2 layers with PyG's self-loop handling, residual + LayerNorm, jumping
knowledge, pooling, MLP head, softmax) is written as explicit loops over the graph's own edges
(kdgat/deploy/native_forward.py), so a call costs what the arithmetic does. It covers GAT
classifier runs (not VGAE or fusion: their per-node decoders would each need their own kernel).

The weights go into an .npz beside the ONNX artefact (model_native.npz), with the same kdgat
metadata as JSON; loading it needs numpy and numba only, not torch. tests/deploy/test_native.py checks
the scores equal the exported model's.
"""

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from kdgat.common.errors import UserError
from kdgat.common.io import atomic_write_bytes
from kdgat.common.kernels import kernel
from kdgat.data.automotive.compiled_window import CompiledWindow, _window_graph
from kdgat.deploy.native_forward import forward

NATIVE_SUFFIX = "_native.npz"
UNKNOWN = 0  # kdgat.data.graphset.UNKNOWN_ID (a torch module; tests/deploy/test_native.py checks they agree)
_POOLING = {"mean": 0, "max": 1, "add": 2, "mean_max": 3}
_JK = {"cat": 0, "max": 1}


def native_path(artefact: Path) -> Path:
    """Where an artefact's native weights lie: beside it, model_native.npz."""
    return artefact.with_name(f"{artefact.stem}{NATIVE_SUFFIX}")


def _f32(t: Any) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)


def native_weights(module: Any) -> dict[str, np.ndarray]:
    """The arrays of an ExportedGraphModel (kdgat.deploy.plain) of a GAT classifier, in the
    layout the kernel reads: linear weights (out, in) as torch stores them, the GATv2 layers
    stacked, the head's layers zero-padded to one width."""
    if getattr(module, "is_vgae", True) or getattr(module, "fusion", None) is not None:
        raise UserError(
            "native scoring covers GAT classifier runs only; a VGAE or fusion run's scores need "
            "its VGAE decoders (score it with the ONNX artefact instead)."
        )
    classifier, plain = module.classifier, module.encoder
    enc = classifier.encoder
    convs = [layer.conv for layer in plain.convs]
    heads, channels = convs[0].heads, convs[0].out_channels
    linears = [m for m in classifier.head if hasattr(m, "weight")]
    if linears[-1].out_features != 2:
        raise UserError(f"native scoring needs a two-class head; this one has {linears[-1].out_features}.")
    width = max(max(m.in_features, m.out_features) for m in linears)
    head_w = np.zeros((len(linears), width, width), np.float32)
    head_b = np.zeros((len(linears), width), np.float32)
    head_dims = np.zeros((len(linears), 2), np.int64)
    for k, m in enumerate(linears):
        head_w[k, : m.out_features, : m.in_features] = _f32(m.weight)
        head_b[k, : m.out_features] = _f32(m.bias)
        head_dims[k] = m.in_features, m.out_features
    edge_dim = module.e_mean.shape[0]
    use_edges = bool(enc.use_edge_features and convs[0].lin_edge is not None)

    def stack(get) -> np.ndarray:
        return np.ascontiguousarray(np.stack([get(c) for c in convs]), dtype=np.float32)

    zeros = np.zeros(heads * channels, np.float32)
    return {
        "x_mean": _f32(module.x_mean),
        "x_std": _f32(module.x_std),
        "e_mean": _f32(module.e_mean),
        "e_std": _f32(module.e_std),
        "embed": _f32(enc.embed.weight),
        "input_w": _f32(enc.input.weight),
        "input_b": _f32(enc.input.bias),
        "lin_l_w": stack(lambda c: _f32(c.lin_l.weight)),
        "lin_l_b": stack(lambda c: _f32(c.lin_l.bias) if c.lin_l.bias is not None else zeros),
        "lin_r_w": stack(lambda c: _f32(c.lin_r.weight)),
        "lin_r_b": stack(lambda c: _f32(c.lin_r.bias) if c.lin_r.bias is not None else zeros),
        "lin_e_w": stack(
            lambda c: _f32(c.lin_edge.weight) if use_edges else np.zeros((heads * channels, edge_dim))
        ),
        "att": stack(lambda c: _f32(c.att).reshape(heads, channels)),
        "conv_b": stack(lambda c: _f32(c.bias) if c.bias is not None else zeros),
        "slope": np.asarray([c.negative_slope for c in convs], np.float32),
        "norm_w": np.stack([_f32(n.weight) for n in enc.norms]),
        "norm_b": np.stack([_f32(n.bias) for n in enc.norms]),
        "norm_eps": np.asarray([n.eps for n in enc.norms], np.float32),
        "head_w": head_w,
        "head_b": head_b,
        "head_dims": head_dims,
        # Scalars: heads, edge features used, JK mode, pooling as 0-d int arrays; clip (1,) float.
        "heads": np.asarray(heads, np.int64),
        "use_edges": np.asarray(int(use_edges), np.int64),
        "jk": np.asarray(_JK[plain.mode], np.int64),
        "pooling": np.asarray(_POOLING[classifier.pooling], np.int64),
        "clip": np.asarray([_clip()], np.float32),
    }


def _clip() -> float:
    from kdgat.data.normalisation import CLIP

    return float(CLIP)


# The float tensors of native_weights, in the order of the packed buffer (see _pack, _unpack).
_PACKED = (
    "x_mean", "x_std", "e_mean", "e_std",  # 0-3
    "embed", "input_w", "input_b",  # 4-6
    "lin_l_w", "lin_l_b", "lin_r_w", "lin_r_b", "lin_e_w", "att", "conv_b", "slope",  # 7-14
    "norm_w", "norm_b", "norm_eps",  # 15-17
    "head_w", "head_b", "clip",  # 18-20
)  # fmt: skip


def _pack(w: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """The weights as four arrays: every float tensor in one buffer with an (offset, d0, d1,
    d2) index, the head's layer sizes and the integer options. A compiled call's dispatch
    costs per argument array (~0.3 µs each), which at ~20 arrays was a third of a tiny
    student's window."""
    tensors = [np.asarray(w[name], np.float32) for name in _PACKED]
    index = np.zeros((len(tensors), 4), np.int64)
    offset = 0
    for k, t in enumerate(tensors):
        shape = (*t.shape, 1, 1, 1)[:3]
        index[k] = offset, *shape
        offset += t.size
    params = np.concatenate([t.ravel() for t in tensors])
    ints = np.asarray([w["heads"], w["use_edges"], w["jk"], w["pooling"]], np.int64)
    return params, index, np.ascontiguousarray(w["head_dims"], np.int64), ints


@kernel()
def _v1(params, index, k):
    o = index[k, 0]
    return params[o : o + index[k, 1]]


@kernel()
def _v2(params, index, k):
    o, a, b = index[k, 0], index[k, 1], index[k, 2]
    return params[o : o + a * b].reshape((a, b))


@kernel()
def _v3(params, index, k):
    o, a, b, c = index[k, 0], index[k, 1], index[k, 2], index[k, 3]
    return params[o : o + a * b * c].reshape((a, b, c))


@kernel()
def _unpack(params, index, head_dims, ints):
    """forward's weight tuples as contiguous views into the packed buffer (no copies)."""
    p, ix = params, index
    normal = (_v1(p, ix, 0), _v1(p, ix, 1), _v1(p, ix, 2), _v1(p, ix, 3))
    embedding = (_v2(p, ix, 4), _v2(p, ix, 5), _v1(p, ix, 6))
    layers = (
        _v3(p, ix, 7),
        _v2(p, ix, 8),
        _v3(p, ix, 9),
        _v2(p, ix, 10),
        _v3(p, ix, 11),
        _v3(p, ix, 12),
        _v2(p, ix, 13),
        _v1(p, ix, 14),
        ints[1] != 0,
    )
    norms = (_v2(p, ix, 15), _v2(p, ix, 16), _v1(p, ix, 17))
    head = (_v3(p, ix, 18), _v2(p, ix, 19), head_dims)
    options = (ints[0], ints[2], ints[3], _v1(p, ix, 20)[0])
    return normal, embedding, layers, norms, head, options


@kernel()
def _score_graph(x, node_id, edge_index, edge_attr, params, index, head_dims, ints):
    return forward(x, node_id, edge_index, edge_attr, *_unpack(params, index, head_dims, ints))


@kernel()
def _score_ring(ring, vocab_keys, vocab_values, params, index, head_dims, ints):
    """Build the window graph of a CompiledWindow's ring, look its CAN IDs up in the vocabulary
    (sorted keys), append is_unknown_id and score it: the detector's whole per-window work in
    one compiled call. Returns (attack probability, the window's label)."""
    x, entities, edge_index, edge_attr, attack = _window_graph(*ring)
    n, f = x.shape
    full = np.empty((n, f + 1), np.float32)
    node_id = np.full(n, UNKNOWN, np.int64)
    for v in range(n):
        full[v, :f] = x[v]
        at = np.searchsorted(vocab_keys, entities[v])
        if at < len(vocab_keys) and vocab_keys[at] == entities[v]:
            node_id[v] = vocab_values[at]
        full[v, f] = 1.0 if node_id[v] == UNKNOWN else 0.0
    weights = _unpack(params, index, head_dims, ints)
    return forward(full, node_id, edge_index, edge_attr, *weights), attack


class NativeGAT:
    """Scores raw window graphs with one compiled call each; same inputs and outputs as an
    exported artefact (score, per-node scores: zeros, a classifier has none)."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        w = {k: np.asarray(v) for k, v in weights.items()}
        self._packed = _pack(w)
        self.node_features, self.edge_features = len(w["x_mean"]), len(w["e_mean"])
        # Compile (or load numba's cache) now, not on the first window of a live bus.
        self(
            np.zeros((2, self.node_features), np.float32),
            np.zeros(2, np.int64),
            np.asarray([[0, 1], [1, 1]], np.int64),
            np.zeros((2, self.edge_features), np.float32),
        )
        ring = CompiledWindow(2, True)
        ring.push(0x100, 0.0, b"\x01", 1)
        ring.push(0x200, 0.001, b"", 0)
        nothing = np.zeros(0, np.int64)  # an empty vocabulary: every ID unknown (row 0)
        self.score_window(ring.ring(), nothing, nothing)

    def __call__(
        self, x: np.ndarray, node_id: np.ndarray, edge_index: np.ndarray, edge_attr: np.ndarray
    ) -> tuple[float, np.ndarray]:
        """(attack probability, zeros (N,)) of one raw window graph. The shapes are checked here
        and the arrays made contiguous in the kernel's dtypes: the kernel does not check bounds,
        and any other layout or dtype would compile a new variant on the first such call."""
        x = np.ascontiguousarray(x, np.float32)
        node_id = np.ascontiguousarray(node_id, np.int64)
        edge_index = np.ascontiguousarray(edge_index, np.int64)
        edge_attr = np.ascontiguousarray(edge_attr, np.float32)
        n, e = len(node_id), edge_index.shape[-1] if edge_index.ndim == 2 else -1
        if (
            x.shape != (n, self.node_features)
            or edge_index.shape != (2, e)
            or edge_attr.shape != (e, self.edge_features)
        ):
            raise ValueError(
                f"a window graph is x (N, {self.node_features}), node_id (N,), edge_index (2, E), "
                f"edge_attr (E, {self.edge_features}); got x {x.shape}, node_id {node_id.shape}, "
                f"edge_index {edge_index.shape}, edge_attr {edge_attr.shape}"
            )
        score = _score_graph(x, node_id, edge_index, edge_attr, *self._packed)
        return float(score), np.zeros(n, np.float32)

    def score_window(
        self, ring: tuple, vocab_keys: np.ndarray, vocab_values: np.ndarray
    ) -> tuple[float, int]:
        """(attack probability, label) of a CompiledWindow's current window (its ring()),
        graph built and scored in one compiled call; vocab_keys sorted CAN IDs, vocab_values
        their vocabulary indices."""
        score, attack = _score_ring(ring, vocab_keys, vocab_values, *self._packed)
        return float(score), int(attack)


def save_native(path: Path, weights: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """The weights and the artefact metadata (as JSON) in one .npz, written atomically."""
    buffer = io.BytesIO()
    # Any: numpy's stub would match an array named allow_pickle to that bool flag.
    arrays: dict[str, Any] = {**weights, "kdgat_meta": np.asarray(json.dumps(meta))}
    np.savez(buffer, **arrays)
    atomic_write_bytes(Path(path), buffer.getvalue())


# What a model_native.npz holds besides the packed float tensors, and the metadata a detector reads.
_REQUIRED = (*_PACKED, "head_dims", "heads", "use_edges", "jk", "pooling")
_REQUIRED_META = ("threshold", "vocabulary", "window", "stride")


def load_native(path: Path) -> tuple[dict[str, Any], NativeGAT]:
    """The metadata and the compiled scorer of a model_native.npz."""
    again = "export the run again (python -m kdgat.export RUN_DIR)"
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:  # not a zip, truncated, bad CRC
        raise UserError(f"{path}: not a readable kdgat native model ({err}); {again}.") from err
    if "kdgat_meta" not in arrays:
        raise UserError(f"{path} is an .npz without kdgat metadata; export it with python -m kdgat.export.")
    try:
        meta = json.loads(str(arrays.pop("kdgat_meta")))
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: its kdgat metadata is not JSON ({err}); {again}.") from err
    missing = [k for k in _REQUIRED if k not in arrays] + [k for k in _REQUIRED_META if k not in meta]
    if missing:
        raise UserError(f"{path} lacks {', '.join(missing)} (another version's export?); {again}.")
    return meta, NativeGAT(arrays)
