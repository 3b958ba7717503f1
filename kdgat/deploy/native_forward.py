"""The native GAT's forward pass (kdgat/deploy/native.py) as numba kernels: explicit loops over
one window graph's own edges, in the exported model's order of operations (normalisation and
clip, input layer with the node-identity embedding, GATv2 layers with PyG's self-loop handling,
residual + LayerNorm, jumping knowledge, pooling, MLP head, softmax). native.py packs the weights
and calls forward; tests/deploy/test_native.py checks its scores equal the exported model's.
"""

import numpy as np

from kdgat.common.kernels import kernel

# Reassociation lets LLVM vectorise the dot products and the other sums (their order differs
# from torch's by float32 rounding, well inside the 1e-5 the tests allow); no other fast-math
# flag, since the kernels rely on -inf (max) and exact comparisons.
_DOT_FLAGS = {"reassoc", "contract"}


@kernel(fastmath=_DOT_FLAGS)
def _linear(x, w, b, out):
    """out = x @ w.T + b, with w (out, in) as torch stores it: one contiguous dot per output."""
    n_out, n_in = w.shape
    for n in range(x.shape[0]):
        for j in range(n_out):
            acc = np.float32(0.0)
            for k in range(n_in):
                acc += x[n, k] * w[j, k]
            out[n, j] = acc + b[j]


@kernel()
def _normalised(values, mean, std, clip):
    out = np.empty(values.shape, np.float32)
    for n in range(values.shape[0]):
        for j in range(values.shape[1]):
            v = (values[n, j] - mean[j]) / std[j]
            out[n, j] = min(max(v, -clip), clip)
    return out


@kernel(fastmath=_DOT_FLAGS, error_model="numpy")
def _gatv2(h, src, dst, attr, w, layer, heads):
    """One GATv2Conv on the edges (src, dst) with their features attr (the graph's own loops
    already dropped and one loop per node appended, as PyG does)."""
    lin_l_w, lin_l_b, lin_r_w, lin_r_b, lin_e_w, att, conv_b, slope, use_edges = w
    n, width = h.shape[0], lin_l_w.shape[1]
    channels = width // heads
    xl = np.empty((n, width), np.float32)
    xr = np.empty((n, width), np.float32)
    _linear(h, lin_l_w[layer], lin_l_b[layer], xl)
    _linear(h, lin_r_w[layer], lin_r_b[layer], xr)
    n_edges = len(src)
    ez = np.zeros((n_edges, width), np.float32)
    if use_edges:
        _linear(attr, lin_e_w[layer], np.zeros(width, np.float32), ez)
    a = np.empty((n_edges, heads), np.float32)
    top = np.full((n, heads), -np.inf, np.float32)
    s = slope[layer]
    for e in range(n_edges):
        i, j = src[e], dst[e]
        for hd in range(heads):
            total = np.float32(0.0)
            for c in range(channels):
                k = hd * channels + c
                z = xl[i, k] + xr[j, k] + ez[e, k]
                total += (z if z > 0 else s * z) * att[layer, hd, c]
            a[e, hd] = total
            top[j, hd] = max(top[j, hd], total)
    denominator = np.zeros((n, heads), np.float32)
    for e in range(n_edges):
        for hd in range(heads):
            a[e, hd] = np.exp(a[e, hd] - top[dst[e], hd])
            denominator[dst[e], hd] += a[e, hd]
    out = np.empty((n, width), np.float32)
    for v in range(n):
        out[v, :] = conv_b[layer]
    for e in range(n_edges):
        i, j = src[e], dst[e]
        for hd in range(heads):
            weight = a[e, hd] / (denominator[j, hd] + np.float32(1e-16))
            for c in range(channels):
                k = hd * channels + c
                out[j, k] += weight * xl[i, k]
    return out


@kernel(inline="always")
def _check_graph(n, node_id, edge_index, vocabulary):
    """The kernel reads without bounds checks: refuse IDs outside the vocabulary and edges
    naming a node outside the graph."""
    for v in range(n):
        if node_id[v] < 0 or node_id[v] >= vocabulary:
            raise ValueError("node_id outside the run's vocabulary")
    for e in range(edge_index.shape[1]):
        if min(edge_index[0, e], edge_index[1, e]) < 0 or max(edge_index[0, e], edge_index[1, e]) >= n:
            raise ValueError("edge_index names a node outside the graph")


@kernel(inline="always")
def _input_layer(x, node_id, normal, embedding, clip):
    """relu(input([normalised x, embed[node_id]])): the encoder's first hidden states."""
    x_mean, x_std, _, _ = normal
    embed, input_w, input_b = embedding
    n, n_features, dim = x.shape[0], x.shape[1], embed.shape[1]
    joined = np.empty((n, n_features + dim), np.float32)
    joined[:, :n_features] = _normalised(x, x_mean, x_std, clip)
    for v in range(n):
        joined[v, n_features:] = embed[node_id[v]]
    hidden = input_w.shape[0]
    h = np.empty((n, hidden), np.float32)
    _linear(joined, input_w, input_b, h)
    for v in range(n):
        for j in range(hidden):
            h[v, j] = max(h[v, j], np.float32(0.0))
    return h


@kernel(inline="always")
def _pyg_edges(n, edge_index, ea):
    """PyG's edges: the graph's own self-loops dropped, one loop per node appended whose
    features are the mean of the node's incoming (kept) edges' features."""
    kept = 0
    for e in range(edge_index.shape[1]):
        if edge_index[0, e] != edge_index[1, e]:
            kept += 1
    src = np.empty(kept + n, np.int64)
    dst = np.empty(kept + n, np.int64)
    attr = np.zeros((kept + n, ea.shape[1]), np.float32)
    incoming = np.zeros(n, np.float32)
    k = 0
    for e in range(edge_index.shape[1]):
        i, j = edge_index[0, e], edge_index[1, e]
        if i != j:
            src[k], dst[k] = i, j
            attr[k] = ea[e]
            attr[kept + j] += ea[e]
            incoming[j] += 1.0
            k += 1
    for v in range(n):
        src[kept + v], dst[kept + v] = v, v
        attr[kept + v] /= max(incoming[v], np.float32(1.0))
    return src, dst, attr


@kernel(inline="always")
def _residual_norm(h, conv, norms, layer, jk, nodes):
    """h = LayerNorm(h + relu(conv)) in place, and its jumping-knowledge step into nodes (cat:
    the layer's own columns; max: the running maximum)."""
    norm_w, norm_b, norm_eps = norms
    hidden = h.shape[1]
    for v in range(h.shape[0]):
        mean = np.float32(0.0)
        for j in range(hidden):
            h[v, j] = h[v, j] + max(conv[v, j], np.float32(0.0))
            mean += h[v, j]
        mean /= hidden
        var = np.float32(0.0)
        for j in range(hidden):
            var += (h[v, j] - mean) ** 2
        scale = np.float32(1.0) / np.sqrt(var / hidden + norm_eps[layer])
        for j in range(hidden):
            h[v, j] = (h[v, j] - mean) * scale * norm_w[layer, j] + norm_b[layer, j]
            if jk == 0:
                nodes[v, layer * hidden + j] = h[v, j]
            else:
                nodes[v, j] = max(nodes[v, j], h[v, j])


@kernel(inline="always")
def _pool(nodes, pooling):
    """The graph's (1, width) read-out of its nodes: mean, max, add or mean and max side by side."""
    n, out_dim = nodes.shape
    width = out_dim * (2 if pooling == 3 else 1)
    graph = np.zeros((1, width), np.float32)
    for j in range(out_dim):
        total, top = np.float32(0.0), np.float32(-np.inf)
        for v in range(n):
            total += nodes[v, j]
            top = max(top, nodes[v, j])
        if pooling == 0:
            graph[0, j] = total / n
        elif pooling == 1:
            graph[0, j] = top
        elif pooling == 2:
            graph[0, j] = total
        else:
            graph[0, j], graph[0, out_dim + j] = total / n, top
    return graph


@kernel(inline="always")
def _attack_probability(graph, head):
    """The MLP head (relu between its layers) and the softmax's attack class."""
    head_w, head_b, head_dims = head
    for k in range(head_dims.shape[0]):
        n_in, n_out = head_dims[k, 0], head_dims[k, 1]
        nxt = np.empty((1, n_out), np.float32)
        _linear(graph, head_w[k, :n_out, :n_in], head_b[k, :n_out], nxt)
        if k < head_dims.shape[0] - 1:
            for j in range(n_out):
                nxt[0, j] = max(nxt[0, j], np.float32(0.0))
        graph = nxt
    top = max(graph[0, 0], graph[0, 1])
    e0, e1 = np.exp(graph[0, 0] - top), np.exp(graph[0, 1] - top)
    return e1 / (e0 + e1)


@kernel(fastmath=_DOT_FLAGS, error_model="numpy")
def forward(x, node_id, edge_index, edge_attr, normal, embedding, layers, norms, head, options):
    """The attack probability of one raw window graph (see native_weights for the arrays).
    Its steps are inlined into it (inline="always", numba's own inlining): the same machine code
    as one long function, so splitting it cost no time per window."""
    heads, jk, pooling, clip = options
    n = x.shape[0]
    _check_graph(n, node_id, edge_index, embedding[0].shape[0])
    h = _input_layer(x, node_id, normal, embedding, clip)
    src, dst, attr = _pyg_edges(n, edge_index, _normalised(edge_attr, normal[2], normal[3], clip))
    n_layers, hidden = norms[0].shape[0], h.shape[1]
    nodes = np.full((n, hidden * n_layers if jk == 0 else hidden), -np.inf, np.float32)
    for layer in range(n_layers):
        conv = _gatv2(h, src, dst, attr, layers, layer, heads)
        _residual_norm(h, conv, norms, layer, jk, nodes)
    return _attack_probability(_pool(nodes, pooling), head)
