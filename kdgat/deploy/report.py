"""The deployment report: what each run's detector costs on one core, side by side.

Per run: parameters, ONNX artefact size, end-to-end latency per window (the graph update for the
window's stride of frames + inference, through the same Detector as `python -m kdgat.detect`)
p50/p99 on one thread, the inference share alone, sustained frames/s at stride 100 and at
stride 1 over a replayed test capture, the margin over a saturated 500 kbit/s and 1 Mbit/s bus,
and the test F1 of the run's metrics.json.

A saturated bus carries bitrate / (bits per frame) frames/s. A classic data frame of n bytes is
47 + 8n bits with an 11-bit ID (SOF, ID, RTR, IDE, r0, DLC, data, CRC, delimiters, ACK, EOF,
3-bit interframe space) and 67 + 8n with a 29-bit ID; bit stuffing adds up to ~20 % more, so
leaving it out gives the most frames per second (the hardest case for a detector). The DLC mix
is the replayed capture's.
"""

import time
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from kdgat.common.errors import DataError
from kdgat.common.io import atomic_write_json, atomic_write_text
from kdgat.data.automotive.frames import Frames
from kdgat.data.automotive.graphs import build_raw
from kdgat.data.automotive.readers import read_frames
from kdgat.data.registry import resolve_layout
from kdgat.deploy.artefact import Scorer, export_run, load_scorer
from kdgat.deploy.blocks import replay_blocks
from kdgat.deploy.native import native_path
from kdgat.deploy.stream import Detector, replay
from kdgat.runs.store import Run
from kdgat.scoring.target import capture_files

BITRATES = {"500k": 500_000, "1M": 1_000_000}
STRIDES = (100, 1)
# How frames reach the detector: (key suffix, label); see _measure. One at a time four ways:
# ONNX with the compiled builder (the detector's default), ONNX with the incremental builder,
# the native model (GAT classifiers only) with the compiled builder, and the same native model
# after calibrating itself on the capture's first seconds (kdgat/deploy/calibrate.py: the car's
# vocabulary map and normalisation swapped in; the same kernel, so the same cost).
MODES = (
    ("", "one at a time"),
    ("_incremental", "one at a time, incremental builder"),
    ("_native", "one at a time, native model"),
    ("_batched", "micro-batched"),
    ("_blocks", "blocks"),
    ("_native_calibrated", "one at a time, native model calibrated on the car"),
)
ONE_AT_A_TIME_MODES = ("", "_incremental", "_native", "_native_calibrated")
CALIBRATION_SECONDS = 10.0  # the calibrated native model's calibration: at most this, half the replay
ONE_AT_A_TIME = ("", "_native")  # the single-window latency: each model's faster of these
GOAL = {"margin_500k_stride100": 100.0, "margin_500k_stride1": 1.0, "latency_ratio": 5.0}


def frame_bits(frames: Frames) -> np.ndarray:
    """Bits on the wire of each frame, without stuffing (see the module docstring)."""
    extended = frames.can_id > 0x7FF
    return np.where(extended, 67, 47) + 8 * frames.dlc.astype(np.int64)


def saturated_rate(frames: Frames, bitrate: int) -> float:
    """Frames/s of a bus saturated with this capture's frame mix."""
    return bitrate / float(frame_bits(frames).mean())


def test_capture(run: Run, max_frames: int) -> Frames:
    """The first test capture of the run (sorted by path), cut to max_frames frames."""
    cfg = run.config
    d = cfg.dataset_config
    if d.data_root is None:
        raise DataError(f"{run.path}: the run has no data_root; the report replays one of its test captures.")
    root, _ = resolve_layout(cfg)  # as training found it: data_root itself or data_root/hcrl_sa
    for pattern in d.test_dirs:  # folder names or globs (the default is test_*)
        for folder in sorted(p for p in root.glob(pattern) if p.is_dir()):
            path, fmt = capture_files(folder, cfg)[0]
            frames = read_frames(path, fmt, malformed="skip")
            return frames.slice(0, min(len(frames), max_frames))
    raise DataError(
        f"{run.path}: none of its test folders ({', '.join(d.test_dirs)}) is under {root}; "
        f"run the report from the folder the run was trained from."
    )


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    return {"p50": round(float(np.percentile(ms, 50)), 4), "p99": round(float(np.percentile(ms, 99)), 4)}


def measure_run(run_dir: Path, max_frames: int = 20000, max_batch: int = 64) -> dict[str, Any]:
    """The figures of one run (its ONNX artefact exported afresh: the one measured is current)."""
    run = Run.open(run_dir)
    artefact = export_run(run_dir, "onnx")
    torch.set_num_threads(1)
    scorer = load_scorer(artefact, threads=1)
    native = native_path(artefact)
    native_scorer = load_scorer(native) if native.is_file() else None
    frames = test_capture(run, max_frames)
    calibrated, seconds = None, None
    if native_scorer is not None and frames.has_time and len(frames) > 1:
        from kdgat.deploy.calibrate import calibrate_scorer, stream_start

        seconds = min(CALIBRATION_SECONDS, float(frames.time[-1] - frames.time[0]) / 2)
        start = stream_start(frames, seconds, int(native_scorer.meta["stride"]))
        calibrated, _ = calibrate_scorer(native_scorer, start, seconds, {})
    out: dict[str, Any] = {
        "run": str(run_dir),
        "preset": run.status.get("preset"),
        "model_size": run.config.model_size,
        "parameters": int(scorer.meta["parameters"]),
        "artefact_bytes": artefact.stat().st_size,
        "test_f1": run.metrics.get("test", {}).get("f1"),
        "capture": str(frames.source),
        "capture_frames": len(frames),
        "window": scorer.meta["window"],
        "saturated_frames_per_s": {k: round(saturated_rate(frames, b), 1) for k, b in BITRATES.items()},
    }
    for stride in STRIDES:
        for suffix, _ in MODES:
            one = suffix in ONE_AT_A_TIME_MODES
            chosen = {"_native": native_scorer, "_native_calibrated": calibrated}.get(suffix, scorer)
            if chosen is None:
                continue  # a VGAE or fusion run: no native model
            batch = 1 if one else max_batch
            # blocks of max_batch strides (python -m kdgat.detect's default): about one batch each
            block = max_batch * stride if suffix == "_blocks" else 0
            out[f"stride_{stride}{suffix}"] = _measure(
                chosen,
                frames,
                stride,
                batch,
                out["saturated_frames_per_s"],
                block,
                "incremental" if suffix == "_incremental" else "compiled",
            )
    out["model_only_ms"] = _model_only(scorer, frames)
    if native_scorer is not None:
        out["model_only_native_ms"] = _model_only(native_scorer, frames)
    out["max_batch"] = max_batch
    out["batched_model"] = scorer.batched
    if seconds is not None:
        out["calibration_seconds"] = round(seconds, 3)
    return out


class _Timed:
    """A Scorer whose calls are timed (wall and thread CPU), per window: a batched call's time
    is shared equally by its windows."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer, self.batched = scorer, scorer.batched
        self.meta, self.threshold, self.vocabulary = scorer.meta, scorer.threshold, scorer.vocabulary
        self.wall: list[float] = []
        self.cpu: list[float] = []
        # A native model's fused call (graph built and scored at once) is timed as inference.
        self.native = _TimedNative(self, scorer.native) if scorer.native is not None else None

    def _timed(self, call, count: int, *args):
        start, start_cpu = time.perf_counter(), time.thread_time()
        result = call(*args)
        self.wall += [(time.perf_counter() - start) / count] * count
        self.cpu += [(time.thread_time() - start_cpu) / count] * count
        return result

    def __call__(self, *graph):
        return self._timed(self.scorer, 1, *graph)

    def score_batch(self, graphs):
        return self._timed(self.scorer.score_batch, len(graphs), graphs)

    def score_union(self, *union):
        return self._timed(self.scorer.score_union, len(union[-1]), *union)


class _TimedNative:
    """A NativeGAT whose fused window calls (score_window) go through _Timed's clock."""

    def __init__(self, timed: _Timed, native) -> None:
        self.timed, self.native = timed, native

    def score_window(self, *args):
        return self.timed._timed(self.native.score_window, 1, *args)


def _model_only(scorer: Scorer, frames: Frames, windows: int = 200) -> dict[str, float]:
    """Single-window model latency with the graph already built: the capture's first stride-100
    windows, each scored alone (one call of the single-graph model), thread CPU time."""
    w = int(scorer.meta["window"])
    raw = build_raw(frames, 0, min(len(frames), windows * w), w, w)
    detector = Detector(scorer)
    n, e = raw["node_ptr"].tolist(), raw["edge_ptr"].tolist()
    graphs = []
    for g in range(len(n) - 1):
        one = {"x": raw["x"][n[g] : n[g + 1]], "node_entity": raw["node_entity"][n[g] : n[g + 1]]}
        graphs.append(
            (*detector._inputs(one), raw["edge_index"][:, e[g] : e[g + 1]], raw["edge_attr"][e[g] : e[g + 1]])
        )
    scorer(*graphs[0])  # warm-up: ONNX Runtime's first call allocates
    seconds = []
    for graph in graphs:
        start = time.thread_time()
        scorer(*graph)
        seconds.append(time.thread_time() - start)
    return _percentiles(seconds)


def _measure(
    scorer: Scorer,
    frames: Frames,
    stride: int,
    max_batch: int,
    saturated: dict[str, float],
    block: int = 0,
    builder: str = "compiled",
) -> dict[str, Any]:
    """One replay of the capture at --speed max through a Detector with this stride, batch and
    builder: frame by frame (block 0) or in blocks of `block` frames. Besides the latencies, the
    CPU time per window split into inference and the rest (graph building, Python, the frame
    hand-over)."""
    timed = _Timed(scorer)
    detector = Detector(
        cast(Scorer, timed),  # _Timed has the part of Scorer's interface a Detector uses
        None,
        stride=stride,
        has_time=frames.has_time,
        max_batch=max_batch,
        builder=builder,
    )
    if block:
        summary = detector.run_blocks(replay_blocks(frames, block))
    else:
        summary = detector.run(replay(frames))
    per_window = summary.cpu_seconds / max(summary.windows, 1) * 1e6
    inference = sum(timed.cpu) / max(summary.windows, 1) * 1e6
    figures: dict[str, Any] = {
        "windows": summary.windows,
        "max_batch": max_batch,
        "block": block,
        "builder": builder if not block else "build_raw",
        "runtime": scorer.backend,
        "cpu_us_per_window": {
            "total": round(per_window, 1),
            "inference": round(inference, 1),
            "rest": round(per_window - inference, 1),
        },
    }
    for clock, seconds, latencies, infer in (
        ("wall", summary.seconds, summary.latencies, timed.wall),
        ("cpu", summary.cpu_seconds, summary.cpu_latencies, timed.cpu),
    ):
        fps = summary.frames / seconds
        figures[clock] = {
            "frames_per_s": round(fps, 1),
            "latency_ms": _percentiles(latencies),
            "inference_ms": _percentiles(infer),
            "margin": {k: round(fps / saturated[k], 2) for k in BITRATES},
        }
    return figures


def _ratio(large: dict[str, float], small: dict[str, float]) -> str:
    return f"{large['p50'] / small['p50']:.2f}x / {large['p99'] / small['p99']:.2f}x"


def _single_window(run: dict[str, Any], clock: str) -> tuple[str, dict[str, float]]:
    """A run's fastest one-at-a-time way at stride 1 (by p50 latency): its key and latencies."""
    keys = [f"stride_1{suffix}" for suffix in ONE_AT_A_TIME if f"stride_1{suffix}" in run]
    key = min(keys, key=lambda k: run[k][clock]["latency_ms"]["p50"])
    return key, run[key][clock]["latency_ms"]


def _goal_lines(runs: list[dict[str, Any]], clock: str) -> list[str]:
    """The issue's goal, checked for the smallest against the largest model given."""
    if len(runs) < 2:
        return []
    small = min(runs, key=lambda r: r["parameters"])
    large = max(runs, key=lambda r: r["parameters"])
    large_key, large_ms = _single_window(large, clock)
    small_key, small_ms = _single_window(small, clock)
    ratio = large_ms["p50"] / small_ms["p50"]
    best = {  # sustained frames/s: the best of the ways frames reach the detector
        stride: max(
            (small[k][clock]["margin"]["500k"], k)
            for k in (f"stride_{stride}{suffix}" for suffix, _ in MODES)
            if k in small
        )
        for stride in STRIDES
    }
    checks = [
        (
            f"margin over a saturated 500 kbit/s bus at stride 100 ({_mode(best[100][1])})",
            best[100][0],
            GOAL["margin_500k_stride100"],
        ),
        (
            f"margin over a saturated 500 kbit/s bus at stride 1, real time ({_mode(best[1][1])})",
            best[1][0],
            GOAL["margin_500k_stride1"],
        ),
        (
            "single-window latency p50 end to end (stride 1, one at a time, each model its "
            f"fastest runtime: largest {large_ms['p50']:.3f} ms, {_mode(large_key)}; smallest "
            f"{small_ms['p50']:.3f} ms, {_mode(small_key)}), largest / smallest",
            ratio,
            GOAL["latency_ratio"],
        ),
    ]
    lines = [
        f"- {name}: {value:.2f}x (goal {goal:g}x): {'met' if value >= goal else 'NOT met'}"
        for name, value, goal in checks
    ]
    if clock == "cpu":  # the same ratio with both models on one runtime, and model only
        same = []
        for suffix, label in MODES[:3]:
            key = f"stride_1{suffix}"
            if key in large and key in small:
                pair = _ratio(large[key]["cpu"]["latency_ms"], small[key]["cpu"]["latency_ms"])
                same.append(f"{label} {pair}")
        model_only = [f"ONNX {_ratio(large['model_only_ms'], small['model_only_ms'])}"]
        if "model_only_native_ms" in large and "model_only_native_ms" in small:
            model_only.append(
                f"native {_ratio(large['model_only_native_ms'], small['model_only_native_ms'])}"
            )
        lines.append(
            "- single-window latency ratio, largest / smallest, p50 / p99, both on the same "
            f"runtime: end to end stride 1: {'; '.join(same)}; model only: {'; '.join(model_only)}"
        )
    return lines


def _p50_p99(ms: dict[str, float]) -> str:
    return f"{ms['p50']:.3f} / {ms['p99']:.3f}"


def _mode(key: str) -> str:
    """The label of a figures key (stride_1_native -> 'one at a time, native model')."""
    suffix = key.split("_", 2)[2] if key.count("_") >= 2 else ""
    return next(label for s, label in MODES if s == (f"_{suffix}" if suffix else ""))


def _mode_rows(runs: list[dict[str, Any]], key: str, mode: str) -> list[tuple[str, list[str]]]:
    """A way's rows; '-' for a run it does not apply to (no native model for VGAE, fusion)."""

    def each(cell) -> list[str]:
        return [cell(r[key]) if key in r else "-" for r in runs]

    return [
        (f"{mode}: latency/window p50 / p99 (ms)", each(lambda f: _p50_p99(f["cpu"]["latency_ms"]))),
        (
            f"{mode}: CPU per window: total = inference + rest (µs)",
            each(lambda f: "{total:.0f} = {inference:.0f} + {rest:.0f}".format(**f["cpu_us_per_window"])),
        ),
        (f"{mode}: sustained frames/s", each(lambda f: f"{f['cpu']['frames_per_s']:,.0f}")),
        (
            f"{mode}: margin over 500 kbit/s / 1 Mbit/s",
            each(lambda f: f"{f['cpu']['margin']['500k']:.2f}x / {f['cpu']['margin']['1M']:.2f}x"),
        ),
    ]


def markdown(runs: list[dict[str, Any]]) -> str:
    cols = [f"{r['model_size']} ({Path(r['run']).name})" for r in runs]
    rows: list[tuple[str, list[str]]] = [
        ("parameters", [f"{r['parameters']:,}" for r in runs]),
        ("ONNX artefact", [f"{r['artefact_bytes'] / 1024:.1f} KiB" for r in runs]),
        ("test F1", [f"{r['test_f1']:.4f}" if r["test_f1"] is not None else "-" for r in runs]),
        (
            "single window, model only (graph built), ONNX: p50 / p99 (ms)",
            [_p50_p99(r["model_only_ms"]) for r in runs],
        ),
        (
            "single window, model only (graph built), native: p50 / p99 (ms)",
            [_p50_p99(r["model_only_native_ms"]) if "model_only_native_ms" in r else "-" for r in runs],
        ),
    ]
    batch = runs[0]["max_batch"]
    calibrated = next((r["calibration_seconds"] for r in runs if "calibration_seconds" in r), None)
    labels = dict(MODES) | {"_batched": f"batch <= {batch}", "_blocks": f"blocks of {batch} strides"}
    present = [
        (stride, suffix)
        for stride in STRIDES
        for suffix, _ in MODES
        if any(f"stride_{stride}{suffix}" in r for r in runs)
    ]
    for stride, suffix in present:
        rows += _mode_rows(runs, f"stride_{stride}{suffix}", f"stride {stride}, {labels[suffix]}")
    for stride, suffix in present:  # wall clock: throughput only (the machine is shared)
        key = f"stride_{stride}{suffix}"
        rows.append(
            (
                f"wall clock, stride {stride}, {labels[suffix]}: frames/s (x 500 kbit/s)",
                [
                    f"{r[key]['wall']['frames_per_s']:,.0f} ({r[key]['wall']['margin']['500k']:.2f}x)"
                    if key in r
                    else "-"
                    for r in runs
                ],
            )
        )
    lines = [
        "# Deployment report",
        "",
        f"One thread, window {runs[0]['window']} frames, replay of "
        f"{runs[0]['capture_frames']} frames of `{Path(runs[0]['capture']).name}` at full speed. "
        f"Saturated bus: {runs[0]['saturated_frames_per_s']['500k']:,.0f} frames/s at 500 kbit/s, "
        f"{runs[0]['saturated_frames_per_s']['1M']:,.0f} at 1 Mbit/s (this capture's frame sizes, "
        "no stuffing bits). Figures in CPU time of the detecting thread (what one dedicated core "
        "spends) unless marked wall clock. The model runs in ONNX Runtime, or where marked native "
        "in the GAT classifier's compiled kernel (model_native.npz). Frames reach the detector: "
        "one at a time (each window built by the compiled builder, or where marked the "
        "incremental one, and scored as its last frame arrives; latency from that frame's "
        "hand-over to the score = graph update for its stride of frames + inference); "
        f"micro-batched (frame by frame, up to {batch} "
        "pending windows built by one build_raw call and scored "
        + (
            "by one call of the batched model where the run has one"
            if any(r["batched_model"] for r in runs)
            else "graph by graph"
        )
        + "; latency from a window's last frame to its score, so it includes the wait for the "
        f"batch to fill); in blocks (numpy arrays of {batch} x stride frames, every window a "
        f"block completes built and scored in chunks of up to {batch}; latency from the block's "
        "hand-over to the window's score). CPU per window = the replay's CPU time / windows, "
        "split into inference (model calls) and the rest (graph building, Python, frame "
        "hand-over). Model only = one window's model call with its graph already built."
        + (
            f" Native model calibrated on the car: the detector's self-calibration "
            f"(--calibrate-seconds) on the capture's first {calibrated:g} s, then the same replay "
            "with the car's vocabulary map and normalisation in the same kernel."
            if calibrated is not None
            else ""
        ),
        "",
        "| | " + " | ".join(cols) + " |",
        "|---|" + "---|" * len(cols),
        *(f"| {name} | " + " | ".join(values) + " |" for name, values in rows),
    ]
    for clock, label in (("cpu", "CPU time"), ("wall", "wall clock")):
        goal = _goal_lines(runs, clock)
        if goal:
            lines += ["", f"Goal, {label} (smallest model; latency ratio against the largest):", *goal]
    return "\n".join(lines) + "\n"


def write_report(run_dirs: list[Path], max_frames: int = 20000, max_batch: int = 64) -> tuple[Path, str]:
    """Measure every run; write deployment_report.json and .md into the first run dir."""
    runs = [measure_run(Path(r), max_frames, max_batch) for r in run_dirs]
    text = markdown(runs)
    target = Path(run_dirs[0]) / "deployment_report.json"
    atomic_write_json(target, {"runs": runs, "goal": GOAL})
    atomic_write_text(target.with_suffix(".md"), text)
    return target, text
