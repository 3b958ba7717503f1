"""Streaming detection: frames in, one scored window graph per stride, alerts out.

The Detector keeps the window graph of the latest W frames up to date frame by frame and,
whenever a window starting at a multiple of the stride is complete (the windows kdgat.evaluate
scores in a capture), scores it with a Scorer. Frames come from a replayed capture (any reader
format; realtime or as fast as possible) or a live bus through python-can. A frame the bus
delivers malformed (error, remote, CAN FD > 8 bytes, a message python-can could not decode) is
counted and skipped. A detector that is behind (frames waiting at the source) micro-batches:
see Detector's max_batch and kdgat/deploy/batch.py. Frames handed over in blocks of numpy
arrays (feed_block, run_blocks; kdgat/deploy/blocks.py) skip the per-frame Python call: every
window a block completes is built and scored in batches.

Two builders keep the one-at-a-time window graph (BUILDERS; their graphs are equal, bit for
bit, to build_raw's): 'compiled' (the default; kdgat.data.automotive.compiled_window) stores
each frame and its per-frame features as it arrives and builds a window's graph in one compiled
call, ~20 µs at W = 100; 'incremental' (kdgat.data.automotive.incremental) updates per-node
tables frame by frame in numpy, O(stride) work per window but ~300 µs of per-call overhead at
W = 100, so it only wins for windows of thousands of frames.
"""

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from kdgat.common.errors import DataError, UserError
from kdgat.data.automotive.canlogs import PATTERNS, message_problem
from kdgat.data.automotive.frames import Frames
from kdgat.data.automotive.incremental import IncrementalWindow
from kdgat.data.automotive.modality import AUTOMOTIVE
from kdgat.data.automotive.readers import read_frames, sniff
from kdgat.data.graphset import UNKNOWN_ID
from kdgat.data.text.scan import read_bytes
from kdgat.deploy.artefact import Scorer
from kdgat.deploy.batch import FrameBlock
from kdgat.deploy.blocks import Block, BlockWindows
from kdgat.deploy.summary import Summary

# A frame as the detector takes it: (time s, CAN ID, data bytes, label or -1 when unknown).
Frame = tuple[float, int, bytes, int]
# What a source yields when no frame is waiting (a paced replay about to sleep, a bus with an
# empty queue): a micro-batching detector scores its pending windows then, not max_batch later.
IDLE: Any = object()

BUILDERS = ("compiled", "incremental")


def window_builder(name: str, window: int, has_time: bool) -> Any:
    """The one-at-a-time window builder called name (see BUILDERS and the module docstring)."""
    if name == "incremental":
        return IncrementalWindow(window, has_time)
    if name == "compiled":
        from kdgat.data.automotive.compiled_window import CompiledWindow  # numba: compiled on demand

        return CompiledWindow(window, has_time)
    raise UserError(f"--builder {name!r}: choose one of {', '.join(BUILDERS)}.")


def capture_format(path: Path) -> str:
    """The reader format of a capture: by suffix for python-can's logs, else by its first line."""
    import fnmatch

    if any(fnmatch.fnmatch(path.name, pattern) for pattern in PATTERNS):
        return "python_can"
    first = read_bytes(path)[:4096].decode("utf-8", "replace").splitlines()
    if first:
        if first[0].strip().startswith("timestamp,arbitration_id,extended"):
            return "can4"  # read_frames hands a python-can CSV on to the python-can reader
        guess = sniff(first[0])
        if guess is not None:
            return guess
    raise DataError(
        f"{path}: not a capture format kdgat knows (4-column CSV, HCRL CSV/log, DAGA, ROAD, or a "
        f"python-can .log/.asc/.blf/.csv/.trc)."
    )


def replay(frames: Frames, realtime: bool = False) -> Iterator[Frame]:
    """The frames of a capture in order; realtime: paced by their timestamps."""
    times = frames.time.tolist()
    ids = frames.can_id.tolist()
    dlc = frames.dlc.tolist()
    payload = frames.payload.tobytes()
    label = frames.label.tolist() if frames.labelled else [-1] * len(times)
    start_wall, start_time = time.perf_counter(), times[0] if times else 0.0
    for k in range(len(times)):
        if realtime and frames.has_time:
            wait = (times[k] - start_time) - (time.perf_counter() - start_wall)
            if wait > 0:
                yield IDLE
                time.sleep(wait)
        yield times[k], ids[k], payload[8 * k : 8 * k + dlc[k]], label[k]


class Detector:
    """Scores the window graph of the frames fed to it at the stride; writes alerts as JSON lines.

    every_window: write every scored window (decision attack or benign), not only alerts.
    max_batch: 1 scores each window as its last frame arrives (feed); more: run() lets up to
    that many complete windows wait while the source has frames waiting (the detector is
    behind) and builds them in one go (push, flush; kdgat/deploy/batch.py).
    builder: how the one-at-a-time path keeps its window graph (BUILDERS).
    frame_offset: stream index of the first frame fed (after a calibration, kdgat/deploy/calibrate.py):
    the records' frame spans count from the stream's first frame.
    """

    def __init__(
        self,
        scorer: Scorer,
        out: IO[str] | None = None,
        *,
        every_window: bool = False,
        stride: int | None = None,
        has_time: bool = True,
        top_k: int = 3,
        max_batch: int = 1,
        builder: str = "compiled",
        frame_offset: int = 0,
    ) -> None:
        meta = scorer.meta
        self.frame_offset = frame_offset
        self.scorer = scorer
        self.window = int(meta["window"])
        self.stride = int(stride or meta["stride"])
        self.threshold = scorer.threshold
        self.node_scores = bool(meta.get("node_scores"))
        self.builder = window_builder(builder, self.window, has_time)
        self.vocabulary = scorer.vocabulary
        self.out, self.every_window, self.top_k = out, every_window, top_k
        self.summary = Summary(calibrated="calibration" in meta)
        self._unlabelled_frames = 0  # frames with label -1 (a live bus) in the stream so far
        if max_batch < 1:
            raise UserError(f"--max-batch {max_batch}: a batch holds at least 1 window.")
        self.max_batch = max_batch
        self.block = FrameBlock(self.window, self.stride, has_time)
        self._arrivals: list[tuple[float, float]] = []  # pending windows' last-frame arrivals
        self.windows = BlockWindows(self.window, self.stride, has_time)  # the block path's frames
        # The vocabulary as sorted arrays: a block's node IDs looked up in one searchsorted.
        keys = sorted(self.vocabulary)
        self._vocab_keys = np.asarray(keys, dtype=np.int64)
        self._vocab_values = np.asarray([self.vocabulary[k] for k in keys], dtype=np.int64)
        # A native model on the compiled builder: each window built and scored in one call.
        native = scorer.native if builder == "compiled" else None
        self._fused = native.score_window if native is not None else None

    def feed(self, t: float, can_id: int, data: bytes, label: int = -1) -> dict[str, Any] | None:
        """Add one frame; returns the scored window's record when this frame completes one.
        Its latency runs from this frame's hand-over to the score: the builder applies frames
        lazily, so that is the window's graph update (for its stride of frames) + inference.
        The clocks are read for window-completing frames only (a clock read costs about what
        buffering a frame does)."""
        b = self.builder
        completes = b.frames + 1 >= self.window and (b.frames + 1 - self.window) % self.stride == 0
        if completes:
            start, start_cpu = time.perf_counter(), time.thread_time()
        if label < 0:
            self._unlabelled_frames += 1
        b.push(can_id, t, data, len(data), max(label, 0))
        self.summary.frames += 1
        if not completes:
            return None
        scored = self._score()
        self.summary.latencies.append(time.perf_counter() - start)
        self.summary.cpu_latencies.append(time.thread_time() - start_cpu)
        record = self._record(*scored)  # after the clocks, as on the batched and block paths
        self._write(record)
        return record

    def _score(self) -> tuple[dict[str, Any], float, np.ndarray | None]:
        """The builder's window (its graph; on the fused path, its span) and its scores."""
        if self._fused is not None:
            score, attack = self._fused(self.builder.ring(), self._vocab_keys, self._vocab_values)
            return {**self.builder.span(), "y": attack}, score, None
        g = self.builder.graph()
        x, node_id = self._inputs(g)
        return (g, *self.scorer(x, node_id, g["edge_index"], g["edge_attr"]))

    def _inputs(self, g: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """The model's x (with is_unknown_id appended) and node_id of a raw window graph."""
        entities = g["node_entity"].tolist()
        node_id = np.fromiter((self.vocabulary.get(e, UNKNOWN_ID) for e in entities), np.int64, len(entities))
        x = np.concatenate([g["x"], (node_id == UNKNOWN_ID).astype(np.float32)[:, None]], axis=1)
        return x, node_id

    def _record(self, g: dict[str, Any], score: float, node_score: np.ndarray | None) -> dict[str, Any]:
        attack = score >= self.threshold
        self.summary.windows += 1
        self.summary.alerts += int(attack)
        window = {k: g[k] for k in ("frame_start", "frame_stop", "time_start", "time_stop")}
        if self.frame_offset:
            window["frame_start"] += self.frame_offset
            window["frame_stop"] += self.frame_offset
        record: dict[str, Any] = {
            "time": g["time_stop"],
            "window": window,
            "score": score,
            "threshold": self.threshold,
            "decision": "attack" if attack else "benign",
        }
        # Only for alerts and windows written: a benign window not written costs what it did.
        if attack or self._written(attack):
            unknown = self._unknown_ids(g)
            if unknown:
                record["unknown_ids"] = unknown
            if attack:
                self.summary.count_unknown(unknown)
        if self.node_scores and node_score is not None:  # None: the fused path (a classifier)
            top = np.argsort(-node_score, kind="stable")[: self.top_k].tolist()
            entities = g["node_entity"]
            record["top_ids"] = [
                {"id": AUTOMOTIVE.identity_name(int(entities[i])), "score": float(node_score[i])} for i in top
            ]
        if self._unlabelled_frames == 0:  # a labelled replay: the window's label, for checking
            record["label"] = g["y"]
        return record

    def _unknown_ids(self, g: dict[str, Any]) -> list[str]:
        """The window's CAN IDs outside the vocabulary, named."""
        if "node_entity" in g:
            ids = g["node_entity"]
        else:  # the fused native path builds no graph here: its window is the builder's ring
            assert self._fused is not None, "a window without node_entity comes from the fused path"
            ids = self.builder.ring()[0]
        return [AUTOMOTIVE.identity_name(e) for e in sorted(set(ids.tolist()) - self.vocabulary.keys())]

    def push(self, t: float, can_id: int, data: bytes, label: int = -1) -> list[dict[str, Any]]:
        """Add one frame to the micro-batching path; returns the records of the windows scored
        now: max_batch of them once that many are complete, else none (flush() scores the
        pending ones when the source has no frame waiting)."""
        block = self.block
        held = block.seen + 1 - block.start  # frames held once this one is
        if held >= self.window and (held - self.window) % self.stride == 0:  # it completes a window
            self._arrivals.append((time.perf_counter(), time.thread_time()))  # clocks only then
        if label < 0:
            self._unlabelled_frames += 1
        self.builder.push(can_id, t, data, len(data), max(label, 0))  # for a lone window: see flush
        block.push(t, can_id, data, label)
        self.summary.frames += 1
        if len(self._arrivals) >= self.max_batch:
            return self.flush()
        return []

    def flush(self) -> list[dict[str, Any]]:
        """Score every complete pending window of the micro-batching path, in order. One window
        alone (the detector keeps up) goes through the one-at-a-time builder, several through
        one build_raw call over their frames; each window's latency runs from the arrival of
        its last frame to its score."""
        count = len(self._arrivals)
        if count == 0:
            return []
        if count == 1 and self.builder.frames == self.block.start + self.window:
            graphs = [self.builder.graph()]  # the builder's window is the pending one
            self.block.drop(1)
        else:
            graphs = self.block.take(count)
        inputs = [(*self._inputs(g), g["edge_index"], g["edge_attr"]) for g in graphs]
        if self.scorer.batched:  # one call for the batch: every window's score at once
            scored = self.scorer.score_batch(inputs)
            stamps = [(time.perf_counter(), time.thread_time())] * count
        else:  # graph by graph; each window's score as soon as it is there
            scored, stamps = [], []
            for one in inputs:
                scored.append(self.scorer(*one))
                stamps.append((time.perf_counter(), time.thread_time()))
        records = []
        for g, (score, node_score), (arrival, arrival_cpu), (done, done_cpu) in zip(
            graphs, scored, self._arrivals, stamps, strict=True
        ):
            self.summary.latencies.append(done - arrival)
            self.summary.cpu_latencies.append(done_cpu - arrival_cpu)
            records.append(self._record(g, score, node_score))
        self._arrivals.clear()
        for record in records:
            self._write(record)
        return records

    def _node_ids(self, entities: np.ndarray) -> np.ndarray:
        """Vocabulary index of each CAN ID (UNKNOWN_ID where the run never saw it), vectorised."""
        keys = self._vocab_keys
        if len(keys) == 0:
            return np.full(len(entities), UNKNOWN_ID, dtype=np.int64)
        at = np.minimum(np.searchsorted(keys, entities), len(keys) - 1)
        return np.where(keys[at] == entities, self._vocab_values[at], UNKNOWN_ID)

    def feed_block(self, block: Block) -> list[dict[str, Any]]:
        """Add a block of frames; scores every window it completes, up to max_batch windows
        per build_raw and model call, and returns their records in order. A window's latency
        runs from the block's hand-over to its score."""
        start, start_cpu = time.perf_counter(), time.thread_time()
        self._unlabelled_frames += int((block.label < 0).sum())
        self.summary.frames += len(block)
        self.summary.malformed += block.malformed
        self.windows.extend(block)
        records: list[dict[str, Any]] = []
        while self.windows.complete:
            raw = self.windows.take(min(self.windows.complete, self.max_batch))
            scored = self._score_raw(raw)
            done, done_cpu = time.perf_counter() - start, time.thread_time() - start_cpu
            self.summary.latencies += [done] * len(scored)
            self.summary.cpu_latencies += [done_cpu] * len(scored)
            records += self._raw_records(raw, scored)
        for record in records:
            self._write(record)
        return records

    def _score_raw(self, raw: dict[str, Any]) -> list[tuple[float, np.ndarray | None]]:
        """(score, node_score) of each window of a build_raw result: one call of the batched
        model on the union graph where the run has one, else window by window."""
        node_id = self._node_ids(raw["node_entity"])
        x = np.concatenate([raw["x"], (node_id == UNKNOWN_ID).astype(np.float32)[:, None]], axis=1)
        node_ptr, edge_ptr = raw["node_ptr"], raw["edge_ptr"]
        sizes = np.diff(node_ptr)
        if self.scorer.batched and len(sizes) > 1:
            edge_graph = np.repeat(np.arange(len(sizes)), np.diff(edge_ptr))
            edge_index = raw["edge_index"] + node_ptr[edge_graph]  # local -> union node indices
            scores = self.scorer.score_union(x, node_id, edge_index, raw["edge_attr"], sizes)
            return [(score, None) for score in scores.tolist()]
        n, e = node_ptr.tolist(), edge_ptr.tolist()
        return [
            self.scorer(
                x[n[g] : n[g + 1]],
                node_id[n[g] : n[g + 1]],
                raw["edge_index"][:, e[g] : e[g + 1]],
                raw["edge_attr"][e[g] : e[g + 1]],
            )
            for g in range(len(sizes))
        ]

    def _raw_records(
        self, raw: dict[str, Any], scored: list[tuple[float, np.ndarray | None]]
    ) -> list[dict[str, Any]]:
        n = raw["node_ptr"].tolist()
        spans = zip(
            raw["frame_start"].tolist(),
            raw["frame_stop"].tolist(),
            raw["time_start"].tolist(),
            raw["time_stop"].tolist(),
            raw["y"].tolist(),
            strict=True,
        )
        records = []
        for g, ((score, node_score), (f0, f1, t0, t1, y)) in enumerate(zip(scored, spans, strict=True)):
            window = {"frame_start": f0, "frame_stop": f1, "time_start": t0, "time_stop": t1, "y": y}
            window["node_entity"] = raw["node_entity"][n[g] : n[g + 1]]
            records.append(self._record(window, score, node_score))
        return records

    def run_blocks(self, blocks: Iterator[Block]) -> Summary:
        """feed_block every block of an iterator; stops at its end or on KeyboardInterrupt
        (SIGINT), with the summary up to there."""
        start, start_cpu = time.perf_counter(), time.thread_time()
        try:
            for block in blocks:
                self.feed_block(block)
        except KeyboardInterrupt:
            pass
        finally:
            self._close(start, start_cpu)
        return self.summary

    def _close(self, start: float, start_cpu: float) -> None:
        """The summary's wall and CPU seconds since the start; the alerts flushed."""
        self.summary.seconds = time.perf_counter() - start
        self.summary.cpu_seconds = time.thread_time() - start_cpu
        if self.out is not None:
            self.out.flush()

    def _written(self, attack: bool) -> bool:
        return self.out is not None and (self.every_window or attack)

    def _write(self, record: dict[str, Any]) -> None:
        if self._written(record["decision"] == "attack"):
            assert self.out is not None
            self.out.write(json.dumps(record) + "\n")

    def run(self, frames: Iterator[Frame | None]) -> Summary:
        """Feed every frame of an iterator (a None stands for a malformed frame, IDLE for a
        source with no frame waiting); stops at its end or on KeyboardInterrupt (SIGINT), with
        the summary up to there (the windows complete by then scored)."""
        start, start_cpu = time.perf_counter(), time.thread_time()
        batched = self.max_batch > 1
        try:
            for frame in frames:
                if frame is IDLE:  # nothing waiting at the source: score what is pending now
                    self.flush()
                elif frame is None:
                    self.summary.malformed += 1
                elif batched:
                    self.push(*frame)
                else:
                    self.feed(*frame)
            self.flush()
        except KeyboardInterrupt:
            pass
        finally:
            self._close(start, start_cpu)
        return self.summary


def open_bus(spec: str):
    """A python-can bus from `INTERFACE:CHANNEL` (socketcan:can0, virtual:test, ...)."""
    import can

    interface, sep, channel = spec.partition(":")
    if not sep or not interface or not channel:
        raise UserError(f"--bus {spec!r}: expected INTERFACE:CHANNEL, e.g. socketcan:can0 or virtual:test.")
    try:
        return can.Bus(interface=interface, channel=channel)
    except (can.CanError, ValueError, OSError, ImportError) as err:
        raise UserError(f"--bus {spec}: python-can could not open it: {err}") from err


def bus_frames(bus, idle_timeout: float | None, max_frames: int | None) -> Iterator[Frame | None]:
    """Frames from an open python-can bus until idle_timeout seconds without a message or
    max_frames messages (then the bus is shut down); None stands for a malformed one."""
    import can

    seen = 0
    try:
        while max_frames is None or seen < max_frames:
            try:
                msg = bus.recv(timeout=0)  # a frame waiting, or else IDLE and a blocking wait
                if msg is None:
                    yield IDLE
                    msg = bus.recv(timeout=idle_timeout)
            except can.CanError:  # a frame the interface could not decode: count it, go on
                seen += 1
                yield None
                continue
            if msg is None:
                return
            seen += 1
            yield None if message_problem(msg) else (msg.timestamp, msg.arbitration_id, bytes(msg.data), -1)
    finally:
        bus.shutdown()


def replay_source(path: Path, realtime: bool) -> tuple[Iterator[Frame], Frames]:
    """The frames of a capture file (malformed rows skipped and counted), for replay."""
    if not Path(path).is_file():
        raise DataError(f"--replay {path}: no such capture file; give the path of a recorded capture.")
    fmt = capture_format(Path(path))
    frames = read_frames(Path(path), fmt, malformed="skip")
    return replay(frames, realtime), frames
