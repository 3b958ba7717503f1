"""Flows -> one host graph per window, vectorised over all windows at once.

A window is a run of consecutive flows in start-time order: `window` flows stepping by `stride`,
or the flows starting within `window_seconds` seconds, stepping by `stride_seconds`. Within a
window, nodes are the hosts that appear in it, numbered by first appearance (never by address),
and directed edges the flows originator -> responder, aggregated per host pair. Features describe
behaviour, never identity (there is no node_id to embed):

- nodes (NODE_FEATURES): flows out and in, distinct peers out and in, bytes and packets sent
  and received, distinct destination ports contacted, distinct own ports contacted by others,
  distinct source ports used, the share of its outgoing / incoming flows left unanswered (no
  response packet), protocol shares, mean log duration, share of its flows it originated, the
  address flags (private, IPv6, multicast/broadcast) and its first position in the window;
- edges (EDGE_FEATURES): flows, originator and responder bytes and packets, mean log duration,
  unanswered share, protocol shares, distinct destination and source ports, share of flows to
  well-known ports (< 1024), mean log gap between the pair's flows.

Labels: a window is an attack if any of its flows is malicious; a window whose flows are all
unlabelled (policy context) gives no graph. Each edge carries edge_label (1 if any of its flows
is malicious, 0 if any is benign, else -1), the benign and attack flow counts it stands for
(edge_flows, for flow-level metrics) and the majority attack of its malicious flows.
"""

import numpy as np

from kdgat.data.internet.flows import HOST_FLAGS, Flows

NODE_FEATURES: tuple[str, ...] = (
    "log_flows_out",
    "log_flows_in",
    "log_peers_out",
    "log_peers_in",
    "log_bytes_sent",
    "log_bytes_received",
    "log_packets_sent",
    "log_packets_received",
    "log_dst_ports_contacted",
    "log_own_ports_contacted",
    "log_src_ports_used",
    "unanswered_out_share",
    "unanswered_in_share",
    "tcp_share",
    "udp_share",
    "icmp_share",
    "log_duration_mean",
    "originated_share",
    *HOST_FLAGS,
    "first_position",
)
EDGE_FEATURES: tuple[str, ...] = (
    "log_flows",
    "log_orig_bytes",
    "log_resp_bytes",
    "log_orig_packets",
    "log_resp_packets",
    "log_duration_mean",
    "unanswered_share",
    "tcp_share",
    "udp_share",
    "icmp_share",
    "log_dst_ports",
    "log_src_ports",
    "well_known_port_share",
    "log_gap_mean",
)


def window_ranges(
    time: np.ndarray,
    lo: int,
    hi: int,
    window: int,
    stride: int,
    seconds: float | None,
    stride_s: float | None,
) -> tuple[np.ndarray, np.ndarray]:
    """[start, stop) flow indices of every window inside flows[lo:hi]."""
    if seconds is None:
        if hi - lo < window:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        starts = np.arange(lo, hi - window + 1, stride, dtype=np.int64)
        return starts, starts + window
    if hi <= lo:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    t = time[lo:hi]
    step = stride_s if stride_s is not None else seconds
    last = int(np.floor((t[-1] - t[0]) / step))
    # Window k spans [t0 + k*step, t0 + k*step + seconds). Sparse traffic leaves most of them
    # empty (CICIDS BENIGN: 5,000 flows over 4 days, 7 million 50 ms windows), so only the
    # windows that can hold a flow are listed: flow i lies in windows k with
    # floor((t_i - t0) / step) - ceil(seconds / step) <= k <= floor((t_i - t0) / step), one more
    # on each side for rounding; the emptiness check below keeps exactly the windows with flows.
    reach = int(np.ceil(seconds / step))
    occupied = np.unique(np.floor((t - t[0]) / step).astype(np.int64))
    if len(occupied) * (reach + 3) < last + 1:
        k = np.unique((occupied[:, None] - np.arange(-1, reach + 2)[None, :]).reshape(-1))
        k = k[(k >= 0) & (k <= last)]
    else:
        k = np.arange(last + 1)
    begin = t[0] + step * k
    starts = lo + np.searchsorted(t, begin, side="left")
    stops = lo + np.searchsorted(t, begin + seconds, side="left")
    keep = stops > starts
    return starts[keep].astype(np.int64), stops[keep].astype(np.int64)


def _distinct(group: np.ndarray, value: np.ndarray, groups: int) -> np.ndarray:
    """Distinct values per group."""
    if len(group) == 0:
        return np.zeros(groups)
    pairs = np.unique(group * 65536 + value.astype(np.int64))
    return np.bincount(pairs // 65536, minlength=groups).astype(np.float64)


def _share(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(
        numerator, denominator, out=np.zeros_like(numerator, dtype=np.float64), where=denominator > 0
    )


def _majority(group: np.ndarray, code: np.ndarray, weight: np.ndarray, groups: int, codes: int) -> np.ndarray:
    """Per group, the code with the largest weight (0 where the weights are all 0)."""
    table = np.bincount(group * codes + code, weights=weight, minlength=groups * codes).reshape(groups, codes)
    return np.where(table.max(axis=1) > 0, table.argmax(axis=1), 0).astype(np.int64)


def build_raw(
    flows: Flows,
    lo: int,
    hi: int,
    window: int,
    stride: int,
    seconds: float | None = None,
    stride_seconds: float | None = None,
) -> dict[str, np.ndarray]:
    """Raw host graphs of every window inside flows[lo:hi] (the cache's arrays)."""
    starts, stops = window_ranges(flows.time, lo, hi, window, stride, seconds, stride_seconds)
    lengths = stops - starts
    flow = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(int(lengths.sum()))
    window_of = np.repeat(np.arange(len(starts)), lengths)
    label = flows.label[flow]
    # Windows of unlabelled flows only have no label to learn or score: no graph.
    labelled = np.bincount(window_of, weights=label >= 0, minlength=len(starts)) > 0
    if not labelled.all():
        keep_flow = labelled[window_of]
        flow, label = flow[keep_flow], label[keep_flow]
        renumber = np.cumsum(labelled) - 1
        window_of = renumber[window_of[keep_flow]]
        starts, stops, lengths = starts[labelled], stops[labelled], lengths[labelled]
    num_windows = len(starts)
    if num_windows == 0:
        return {}
    hosts = int(flows.host_flags.shape[0])

    # Nodes: distinct (window, host) over both ends of every flow, numbered in order of first
    # appearance in the window (a flow's originator before its responder). Numbering them by
    # host index would order them by address text, so renaming the addresses would permute
    # every graph: the order must depend on behaviour only, like the features.
    src_key = window_of * hosts + flows.src[flow]
    dst_key = window_of * hosts + flows.dst[flow]
    ends = np.stack([src_key, dst_key], axis=1).reshape(-1)  # flow by flow, originator first
    keys, first, inverse = np.unique(ends, return_index=True, return_inverse=True)
    order = np.argsort(first)  # flows are window-major, so this order is window-major too
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    node_keys, inverse = keys[order], rank[inverse.reshape(-1)]
    src_node, dst_node = inverse[0::2], inverse[1::2]
    num_nodes = len(node_keys)
    node_window, node_host = node_keys // hosts, node_keys % hosts
    node_ptr = np.searchsorted(node_window, np.arange(num_windows + 1))

    # Edges: distinct (originator node, responder node), window-major because nodes are.
    edge_keys, edge_of = np.unique(src_node * num_nodes + dst_node, return_inverse=True)
    edge_of = edge_of.reshape(-1)
    num_edges = len(edge_keys)
    edge_src, edge_dst = edge_keys // num_nodes, edge_keys % num_nodes
    edge_window = node_window[edge_src]
    edge_ptr = np.searchsorted(edge_window, np.arange(num_windows + 1))

    ob, rb = flows.orig_bytes[flow], flows.resp_bytes[flow]
    op, rp = flows.orig_pkts[flow], flows.resp_pkts[flow]
    proto, dst_port, src_port = flows.proto[flow], flows.dst_port[flow], flows.src_port[flow]
    unanswered = (rp == 0).astype(np.float64)
    log_duration = np.log1p(np.maximum(flows.duration[flow], 0.0))
    time = flows.time[flow]

    def per_edge(values: np.ndarray) -> np.ndarray:
        return np.bincount(edge_of, weights=values, minlength=num_edges)

    edge_count = np.bincount(edge_of, minlength=num_edges).astype(np.float64)
    # Gaps between successive flows of the same edge (flows are in time order inside a window).
    order = np.argsort(edge_of, kind="stable")
    same = edge_of[order][1:] == edge_of[order][:-1]
    gap = np.log1p(np.abs(time[order][1:] - time[order][:-1]) * 1e3)[same]
    gap_mean = _share(np.bincount(edge_of[order][1:][same], weights=gap, minlength=num_edges), edge_count - 1)
    edge_columns = [
        np.log1p(edge_count),
        np.log1p(per_edge(ob)),
        np.log1p(per_edge(rb)),
        np.log1p(per_edge(op)),
        np.log1p(per_edge(rp)),
        per_edge(log_duration) / edge_count,
        per_edge(unanswered) / edge_count,
        *(per_edge((proto == p).astype(np.float64)) / edge_count for p in range(3)),
        np.log1p(_distinct(edge_of, dst_port, num_edges)),
        np.log1p(_distinct(edge_of, src_port, num_edges)),
        per_edge((dst_port < 1024).astype(np.float64)) / edge_count,
        gap_mean,
    ]

    def per_node(node: np.ndarray, values: np.ndarray) -> np.ndarray:
        return np.bincount(node, weights=values, minlength=num_nodes)

    ones = np.ones(len(flow))
    out_flows, in_flows = per_node(src_node, ones), per_node(dst_node, ones)
    both = np.concatenate([src_node, dst_node])
    all_flows = out_flows + in_flows
    proto2 = np.concatenate([proto, proto])
    position = (flow - starts[window_of]) / np.maximum(lengths[window_of] - 1, 1)
    first = np.full(num_nodes, np.inf)
    np.minimum.at(first, both, np.concatenate([position, position]))
    node_columns = [
        np.log1p(out_flows),
        np.log1p(in_flows),
        np.log1p(np.bincount(edge_src, minlength=num_nodes)),
        np.log1p(np.bincount(edge_dst, minlength=num_nodes)),
        np.log1p(per_node(src_node, ob) + per_node(dst_node, rb)),
        np.log1p(per_node(src_node, rb) + per_node(dst_node, ob)),
        np.log1p(per_node(src_node, op) + per_node(dst_node, rp)),
        np.log1p(per_node(src_node, rp) + per_node(dst_node, op)),
        np.log1p(_distinct(src_node, dst_port, num_nodes)),
        np.log1p(_distinct(dst_node, dst_port, num_nodes)),
        np.log1p(_distinct(src_node, src_port, num_nodes)),
        _share(per_node(src_node, unanswered), out_flows),
        _share(per_node(dst_node, unanswered), in_flows),
        *(per_node(both, (proto2 == p).astype(np.float64)) / all_flows for p in range(3)),
        per_node(both, np.concatenate([log_duration, log_duration])) / all_flows,
        out_flows / all_flows,
        *(flows.host_flags[node_host, j].astype(np.float64) for j in range(flows.host_flags.shape[1])),
        first,
    ]
    x = np.stack(node_columns, axis=1).astype(np.float32)
    edge_attr = np.stack(edge_columns, axis=1).astype(np.float32)

    attack_flow = (label == 1).astype(np.float64)
    benign_flow = (label == 0).astype(np.float64)
    attacks, benign = per_edge(attack_flow), per_edge(benign_flow)
    edge_label = np.where(attacks > 0, 1, np.where(benign > 0, 0, -1)).astype(np.int64)
    codes = max(len(flows.attack_names), 1)
    attack = flows.attack[flow].astype(np.int64)
    node_label = np.zeros(num_nodes, dtype=np.int64)
    np.maximum.at(node_label, both, np.concatenate([label == 1, label == 1]).astype(np.int64))
    y = (np.bincount(window_of, weights=attack_flow, minlength=num_windows) > 0).astype(np.int64)
    edge_index = np.stack([edge_src - node_ptr[edge_window], edge_dst - node_ptr[edge_window]]).astype(
        np.int64
    )
    return {
        "x": x,
        "node_entity": node_host.astype(np.int64),
        "node_label": node_label,
        "edge_index": edge_index,
        "edge_attr": edge_attr,
        "node_ptr": node_ptr.astype(np.int64),
        "edge_ptr": edge_ptr.astype(np.int64),
        "y": y,
        "attack_id": _majority(window_of, attack, attack_flow, num_windows, codes),
        "frame_start": starts.astype(np.int64),
        "frame_stop": stops.astype(np.int64),
        "time_start": flows.time[starts].astype(np.float64),
        "time_stop": flows.time[stops - 1].astype(np.float64),
        "edge_label": edge_label,
        "edge_flows": np.stack([benign, attacks], axis=1).astype(np.float32),
        "edge_attack_id": _majority(edge_of, attack, attack_flow, num_edges, codes),
    }
