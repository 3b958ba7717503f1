"""Where a streaming detector's time goes, per scored window, on one thread (CPU time).

    python benchmarks/deploy_breakdown.py ARTEFACT_OR_RUN [ARTEFACT_OR_RUN ...] [--capture FILE]
        [--frames N] [--max-batch B]

For each model and stride (100 and 1) it replays the capture's first N frames the ways
kdgat/deploy/stream.py does and times each step separately (thread CPU time, µs per scored
window):
- one at a time, with each builder (compiled, incremental): buffering the stride's frames
  (push, the Python call per frame), the graph update (graph()), the model inputs (vocabulary
  lookup, is_unknown_id) and the model call; for a native model (model_native.npz) also the
  fused path the detector takes with the compiled builder (graph, inputs and model in one
  compiled call, NativeGAT.score_window);
- blocks (max_batch x stride frames a block): appending the block's arrays, build_raw over the
  chunk of windows, the union graph's inputs and the one batched model call.
The deployment report (python -m kdgat.export TEACHER TINY --report) gives the end-to-end
figures; this says which step to cut.
"""

import argparse
import time
from pathlib import Path

import numpy as np

from kdgat.data.automotive.graphs import build_raw
from kdgat.data.automotive.readers import read_frames
from kdgat.data.graphset import UNKNOWN_ID
from kdgat.deploy.artefact import load_scorer
from kdgat.deploy.blocks import BlockWindows, frames_block
from kdgat.deploy.stream import BUILDERS, Detector, capture_format, window_builder

CAPTURE = Path("../shared/data/hcrl_sa/test_01_known_vehicle_known_attack/DoS-sonata.csv.gz")


def _clock() -> float:
    return time.thread_time()


def one_at_a_time(
    detector: Detector, frames, stride: int, name: str, fused: bool = False
) -> dict[str, float]:
    w = detector.window
    builder = window_builder(name, w, frames.has_time)
    rows = list(
        zip(
            frames.can_id.tolist(),
            frames.time.tolist(),
            [frames.payload[k, : frames.dlc[k]].tobytes() for k in range(len(frames))],
            frames.dlc.tolist(),
            frames.label.tolist(),
            strict=True,
        )
    )
    steps = ("push", "graph + inputs + model") if fused else ("push", "graph", "inputs", "model")
    spent = dict.fromkeys(steps, 0.0)
    windows = 0
    keys, values = detector._vocab_keys, detector._vocab_values
    for k, row in enumerate(rows):
        t = _clock()
        builder.push(*row)
        spent["push"] += _clock() - t
        if k + 1 < w or (k + 1 - w) % stride:
            continue  # this frame completes no window
        windows += 1
        if fused:
            t0 = _clock()
            detector.scorer.native.score_window(builder.ring(), keys, values)
            spent["graph + inputs + model"] += _clock() - t0
        else:
            t0 = _clock()
            g = builder.graph()
            t1 = _clock()
            x, node_id = detector._inputs(g)
            t2 = _clock()
            detector.scorer(x, node_id, g["edge_index"], g["edge_attr"])
            t3 = _clock()
            spent["graph"] += t1 - t0
            spent["inputs"] += t2 - t1
            spent["model"] += t3 - t2
    return {k: v / windows * 1e6 for k, v in spent.items()}


def blocks(detector: Detector, frames, stride: int, max_batch: int) -> dict[str, float]:
    w, size = detector.window, max_batch * stride
    buffer = BlockWindows(w, stride, frames.has_time)
    spent = dict.fromkeys(("extend", "build_raw", "inputs", "model"), 0.0)
    windows = 0
    batched = detector.scorer.batched
    for k in range(0, len(frames), size):
        t = _clock()
        buffer.extend(frames_block(frames, k, min(k + size, len(frames))))
        spent["extend"] += _clock() - t
        while buffer.complete:
            t0 = _clock()
            raw = buffer.take(min(buffer.complete, max_batch))
            t1 = _clock()
            node_id = detector._node_ids(raw["node_entity"])
            x = np.concatenate([raw["x"], (node_id == UNKNOWN_ID).astype(np.float32)[:, None]], axis=1)
            sizes = np.diff(raw["node_ptr"])
            edge_graph = np.repeat(np.arange(len(sizes)), np.diff(raw["edge_ptr"]))
            edge_index = raw["edge_index"] + raw["node_ptr"][edge_graph]
            t2 = _clock()
            if batched:
                detector.scorer.score_union(x, node_id, edge_index, raw["edge_attr"], sizes)
            else:
                detector._score_raw(raw)
            t3 = _clock()
            spent["build_raw"] += t1 - t0
            spent["inputs"] += t2 - t1
            spent["model"] += t3 - t2
            windows += len(sizes)
    return {k: v / windows * 1e6 for k, v in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("models", type=Path, nargs="+", help="artefacts (.onnx, .pt) or run directories")
    parser.add_argument("--capture", type=Path, default=CAPTURE)
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--max-batch", type=int, default=64)
    args = parser.parse_args()
    frames = read_frames(args.capture, capture_format(args.capture), malformed="skip")
    for model in args.models:
        scorer = load_scorer(model, threads=1)
        detector = Detector(scorer)
        # warm-up: ONNX Runtime's first calls allocate
        g = build_raw(frames, 0, 100, 100, 100)
        one = {"x": g["x"], "node_entity": g["node_entity"]}
        scorer(*detector._inputs(one), g["edge_index"], g["edge_attr"])
        print(f"{model} ({scorer.meta['model_size']}, {scorer.meta['parameters']:,} parameters)")
        for stride in (100, 1):
            n = args.frames if stride == 100 else min(args.frames, 3000)
            part = frames.slice(0, n)
            ways = [(name, one_at_a_time(detector, part, stride, name)) for name in BUILDERS]
            if scorer.native is not None:
                ways.append(("fused native", one_at_a_time(detector, part, stride, "compiled", True)))
            for name, a in ways:
                print(
                    f"  stride {stride:3d}, one at a time ({name}), µs/window: "
                    + ", ".join(f"{k} {v:.1f}" for k, v in a.items())
                    + f"; total {sum(a.values()):.1f}"
                )
            b = blocks(detector, part, stride, args.max_batch)
            print(
                f"  stride {stride:3d}, blocks of {args.max_batch} strides, µs/window: "
                + ", ".join(f"{k} {v:.1f}" for k, v in b.items())
                + f"; total {sum(b.values()):.0f}"
            )


if __name__ == "__main__":
    main()
