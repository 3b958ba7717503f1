"""Edge deployment on real hcrl_sa captures: exported artefacts (ONNX, TorchScript) score as the
PyTorch model does for every graph run kind; streaming detection on a replayed capture gives
kdgat.evaluate's scores; the python-can virtual bus gives the replay's scores with malformed
frames counted and skipped; the deployment report's figures hang together."""

import dataclasses
import gzip
import json
import threading
from pathlib import Path

import can
import numpy as np
import pytest
import torch

from configs import DatasetConfig, ExperimentConfig, TrainingConfig
from kdgat.cli.detect import main as detect_main
from kdgat.cli.export import main as export_main
from kdgat.common.errors import UserError
from kdgat.data.automotive.graphs import build_graphs
from kdgat.data.automotive.readers import read_frames
from kdgat.data.dataset import evaluation_graphs
from kdgat.data.normalisation import normalise
from kdgat.deploy.artefact import export_run, load_scorer
from kdgat.deploy.blocks import bus_blocks, replay_blocks
from kdgat.deploy.native import native_path
from kdgat.deploy.report import frame_bits, saturated_rate
from kdgat.deploy.stream import IDLE, Detector, bus_frames, open_bus, replay
from kdgat.experiment import run_experiment
from kdgat.runs.store import Run
from kdgat.scoring.evaluate import evaluate_run
from kdgat.scoring.finished import scorers
from kdgat.scoring.target import capture_files
from tests.e2e.captures import unheard_counts
from tests.helpers import shared_data

pytestmark = [pytest.mark.slow, pytest.mark.real_data]

# (folder, file, first frame, frames): slices of real captures that hold benign and attack traffic.
SLICES = [
    ("train_01_attack_free", "attack-free-kia.csv.gz", 0, 8000),
    ("train_02_with_attacks", "DoS-kia.csv.gz", 68000, 8000),
    ("test_01_known_vehicle_known_attack", "DoS-sonata.csv.gz", 37000, 5000),
]
TOLERANCE = {"GAT": 1e-5, "VGAE": 1e-4}  # absolute on probabilities; relative on VGAE scores


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small hcrl_sa tree cut from the real captures (same layout, fewer frames)."""
    source, root = shared_data("hcrl_sa"), tmp_path_factory.mktemp("hcrl_sa")
    for folder, name, start, count in SLICES:
        with gzip.open(source / folder / name, "rt") as handle:
            lines = handle.read().splitlines()
        (root / folder).mkdir()
        text = "\n".join([lines[0], *lines[1 + start : 1 + start + count]]) + "\n"
        (root / folder / name.removesuffix(".gz")).write_text(text)
    return root


@pytest.fixture(scope="module")
def runs(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny GAT, VGAE and fusion GAT runs, one epoch each, on the cut captures."""
    work = tmp_path_factory.mktemp("runs")
    base = ExperimentConfig(
        dataset="hcrlsa",
        model_size="tiny",
        device="cpu",
        runs_root=work / "runs",
        dataset_config=DatasetConfig(data_root=data_root, cache_dir=work / "cache"),
        training_config=TrainingConfig(epochs=1),
    )
    vgae = dict(learning_type="unsupervised", model_architecture="VGAE", training_mode="normals_only")
    out = {"gat": run_experiment(base), "vgae": run_experiment(dataclasses.replace(base, **vgae))}
    out["fusion"] = run_experiment(dataclasses.replace(base, learning_type="fusion"))
    return out


def _test_file(data_root: Path) -> Path:
    return data_root / SLICES[2][0] / SLICES[2][1].removesuffix(".gz")


def _reference(run_dir: Path, path: Path) -> np.ndarray:
    """kdgat.evaluate's window scores of one capture (its own graph preparation and scorer)."""
    run = Run.open(run_dir)
    cfg = run.config
    score, _ = scorers(run_dir, cfg, run.metrics, torch.device("cpu"))
    [(_, graphs, _)] = evaluation_graphs(capture_files(path, cfg), cfg, run.vocabulary, run.normalisation)
    return score(graphs)


def _close(kind: str, got: np.ndarray, want: np.ndarray) -> None:
    if kind == "VGAE":
        np.testing.assert_allclose(got, want, rtol=TOLERANCE["VGAE"], atol=1e-6)
    else:
        np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE["GAT"])


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("kind", ["gat", "vgae", "fusion"])
def test_exported_artefacts_score_as_the_pytorch_model(
    kind: str, fmt: str, runs: dict[str, Path], data_root: Path
) -> None:
    run_dir = runs[kind]
    artefact = export_run(run_dir, fmt)
    scorer = load_scorer(artefact)
    run = Run.open(run_dir)
    meta = scorer.meta
    assert meta["source_run"] == str(run_dir) and meta["config_digest"] == run.config_digest
    assert meta["threshold"] == run.metrics["threshold"] and meta["window"] == 100
    assert meta["vocabulary"] == {str(k): v for k, v in run.vocabulary.items()}
    assert meta["normalisation"] == run.normalisation
    # The run's test graphs, raw (the artefact normalises), against the PyTorch scorer's.
    frames = read_frames(_test_file(data_root), "can4")
    raw = build_graphs(frames, 0, len(frames), 100, 100, run.vocabulary)
    score, _ = scorers(run_dir, run.config, run.metrics, torch.device("cpu"))
    want = score(normalise(raw, run.normalisation))
    got = []
    for g in range(len(raw)):
        n0, n1, e0, e1 = raw.node_ptr[g], raw.node_ptr[g + 1], raw.edge_ptr[g], raw.edge_ptr[g + 1]
        s, node_score = scorer(
            raw.x[n0:n1].numpy(),
            raw.node_id[n0:n1].numpy(),
            raw.edge_index[:, e0:e1].numpy(),
            raw.edge_attr[e0:e1].numpy(),
        )
        assert node_score.shape == (int(n1 - n0),)
        got.append(s)
    assert raw.y.any() and not raw.y.all()
    _close(run.config.model_architecture, np.asarray(got), want)


def test_a_gat_export_writes_a_native_model_that_scores_as_the_pytorch_model(
    runs: dict[str, Path], data_root: Path
) -> None:
    for kind in ("vgae", "fusion"):  # their decoders have no native kernel: none written
        assert not native_path(export_run(runs[kind], "onnx")).exists()
    artefact = export_run(runs["gat"], "onnx")
    scorer = load_scorer(native_path(artefact))
    run = Run.open(runs["gat"])
    assert scorer.backend == "native" and scorer.meta["format"] == "native"
    assert scorer.meta["config_digest"] == run.config_digest and scorer.threshold == run.metrics["threshold"]
    frames = read_frames(_test_file(data_root), "can4")
    raw = build_graphs(frames, 0, len(frames), 100, 100, run.vocabulary)
    score, _ = scorers(runs["gat"], run.config, run.metrics, torch.device("cpu"))
    want = score(normalise(raw, run.normalisation))
    got = []
    for g in range(len(raw)):
        n0, n1, e0, e1 = raw.node_ptr[g], raw.node_ptr[g + 1], raw.edge_ptr[g], raw.edge_ptr[g + 1]
        one = (raw.x[n0:n1], raw.node_id[n0:n1], raw.edge_index[:, e0:e1], raw.edge_attr[e0:e1])
        got.append(scorer(*(t.numpy() for t in one))[0])
    _close("GAT", np.asarray(got), want)


def test_both_window_builders_give_the_same_records(runs: dict[str, Path], data_root: Path) -> None:
    """The compiled and the incremental builder's graphs are equal bit for bit, so a detector
    with either gives the same windows, scores and decisions, at a stride that overlaps
    windows and at one that skips frames between them."""
    frames = read_frames(_test_file(data_root), "can4").slice(1500, 2700)  # benign, then flooding
    scorer = load_scorer(native_path(export_run(runs["gat"], "onnx")))
    for stride in (1, 37, 150):
        records = {}
        for builder in ("compiled", "incremental"):
            detector = Detector(scorer, every_window=True, stride=stride, builder=builder)
            records[builder] = [r for r in (detector.feed(*f) for f in replay(frames)) if r is not None]
        assert len(records["compiled"]) == (1200 - 100) // stride + 1
        assert records["compiled"] == records["incremental"]
    with pytest.raises(UserError, match="--builder 'tables'"):
        Detector(scorer, builder="tables")


@pytest.mark.parametrize(
    ("model", "block", "builder"),
    [  # block 0: frame by frame, lone windows through the builder
        ("run_dir", None, None),
        ("onnx", None, None),
        ("onnx", "333", None),
        ("onnx", "0", None),
        ("onnx", "0", "incremental"),
        ("native", "0", None),
        ("native", "1x", None),  # frame by frame, --max-batch 1: built and scored in one call
        ("native", None, None),
    ],
)
def test_replayed_detection_scores_equal_kdgat_evaluate(
    model: str, block: str | None, builder: str | None, runs: dict[str, Path], data_root: Path, tmp_path: Path
) -> None:
    run_dir = runs["vgae"] if model == "run_dir" else runs["gat"]
    source = run_dir if model == "run_dir" else export_run(run_dir, "onnx")
    if model == "native":
        source = native_path(source)
    capture = _test_file(data_root)
    alerts, summary = tmp_path / "windows.jsonl", tmp_path / "summary.json"
    argv = [
        str(source),
        "--replay",
        str(capture),
        "--every-window",
        "--alerts",
        str(alerts),
    ]
    if block == "1x":
        argv += ["--block", "0", "--max-batch", "1"]
    elif block is not None:
        argv += ["--block", block]  # None: the default, max-batch x stride
    argv += [] if builder is None else ["--builder", builder]  # None: the default, compiled
    assert detect_main([*argv, "--summary", str(summary)]) == 0
    records = [json.loads(line) for line in alerts.read_text().splitlines()]
    want = _reference(run_dir, capture)
    _close(Run.open(run_dir).config.model_architecture, np.array([r["score"] for r in records]), want)
    evaluated = json.loads(evaluate_run(run_dir, capture).read_text())["all"]
    flagged = sum(r["decision"] == "attack" for r in records)
    confusion = evaluated["confusion_matrix"]
    assert len(records) == evaluated["n"] and flagged == confusion["tp"] + confusion["fp"]
    assert sum(r["label"] for r in records) == evaluated["n_attack"]
    assert [r["window"]["frame_start"] for r in records[:3]] == [0, 100, 200]
    if model == "run_dir":  # a VGAE names the CAN IDs that reconstruct worst
        assert all(len(r["top_ids"]) == 3 and r["top_ids"][0]["id"].startswith("0x") for r in records)
    done = json.loads(summary.read_text())
    assert done["frames"] == SLICES[2][3] and done["windows"] == len(records) and done["malformed"] == 0
    assert done["alerts"] == flagged and done["latency_ms_p99"] >= done["latency_ms_p50"] > 0
    # Each window's CAN IDs the run never saw (trained on the Kia, replayed on the Sonata), read
    # off the capture's frames; the summary counts the alerts holding one.
    frames, known = read_frames(capture, "can4"), set(load_scorer(source).vocabulary)
    spans = [(r["window"]["frame_start"], r["window"]["frame_stop"]) for r in records]
    unknown = [sorted(set(frames.can_id[a:b].tolist()) - known) for a, b in spans]
    assert [r.get("unknown_ids", []) for r in records] == [[f"0x{i:03X}" for i in u] for u in unknown]
    alerted = [u for u, r in zip(unknown, records, strict=True) if r["decision"] == "attack"]
    assert flagged > 0 and done["alerts_with_unknown_ids"] == sum(map(bool, alerted)) > 0
    assert done["unknown_ids"] == unheard_counts([set(u) for u in alerted])


def _idle_every(frames, period: int):
    """The replay with IDLE (no frame waiting) after every `period` frames: partial batches,
    lone windows through the incremental builder, windows pending across an IDLE."""
    for k, frame in enumerate(frames):
        yield frame
        if k % period == period - 1:
            yield IDLE


@pytest.mark.parametrize(
    ("kind", "stride", "max_batch", "idle", "count"),
    [
        ("gat", 100, 7, None, 5000),  # ONNX, 50 windows: 7 batches of 7 and a last one of 1
        ("gat", 1, 64, None, 1200),  # stride 1: 1101 windows in batches of 64
        ("gat", 1, 16, 37, 1200),  # bursts: IDLE every 37 frames
        ("vgae", 37, 5, 250, 5000),  # run dir (eager torch), top_ids; windows overlap, odd stride
        ("gat", 150, 3, None, 5000),  # stride > window: frames between windows skipped
    ],
)
def test_micro_batched_detection_equals_one_window_at_a_time(
    kind: str,
    stride: int,
    max_batch: int,
    idle: int | None,
    count: int,
    runs: dict[str, Path],
    data_root: Path,
) -> None:
    first = 0 if count == 5000 else 1500  # benign up to frame 2181, then flooding
    frames = read_frames(_test_file(data_root), "can4").slice(first, first + count)
    source = export_run(runs[kind], "onnx") if kind == "gat" else runs[kind]
    scorer = load_scorer(source)
    one = Detector(scorer, every_window=True, stride=stride)
    want = [r for r in (one.feed(*f) for f in replay(frames)) if r is not None]
    batched = Detector(scorer, every_window=True, stride=stride, max_batch=max_batch)
    got = []
    batched.flush = (lambda flush: lambda: got.extend(flush()) or [])(batched.flush)
    feed_push = batched.push
    batched.push = lambda *f: got.extend(feed_push(*f)) or []
    summary = batched.run(replay(frames) if idle is None else _idle_every(replay(frames), idle))
    assert len(want) == (count - 100) // stride + 1 and summary.windows == len(got) == len(want)
    assert [r["window"] for r in got] == [r["window"] for r in want]  # same windows, same order
    assert [r["decision"] for r in got] == [r["decision"] for r in want]
    assert [r.get("unknown_ids") for r in got] == [r.get("unknown_ids") for r in want]
    assert [r["label"] for r in got] == [r["label"] for r in want]
    assert any(r["label"] for r in want) and not all(r["label"] for r in want)
    np.testing.assert_allclose([r["score"] for r in got], [r["score"] for r in want], rtol=1e-6, atol=1e-7)
    if kind == "vgae":
        assert [[t["id"] for t in r["top_ids"]] for r in got] == [
            [t["id"] for t in r["top_ids"]] for r in want
        ]
    assert summary.alerts == one.summary.alerts and summary.frames == count
    assert len(summary.latencies) == len(got) and min(summary.latencies) > 0


@pytest.mark.parametrize(
    ("kind", "stride", "size", "count"),
    [
        ("gat", 1, 37, 1200),  # stride 1: blocks split windows, batches of up to 64 windows
        ("gat", 7, 250, 5000),  # odd stride and block size
        ("gat", 100, 333, 5000),  # stride = window, blocks of a third of a window and more
        ("gat", 100, 1, 1200),  # one frame per block
        ("vgae", 7, 97, 1200),  # run dir (eager torch), window by window, top_ids
    ],
)
def test_block_detection_equals_one_window_at_a_time(
    kind: str, stride: int, size: int, count: int, runs: dict[str, Path], data_root: Path
) -> None:
    first = 0 if count == 5000 else 1500  # benign up to frame 2181, then flooding
    frames = read_frames(_test_file(data_root), "can4").slice(first, first + count)
    source = export_run(runs[kind], "onnx") if kind == "gat" else runs[kind]
    scorer = load_scorer(source)
    one = Detector(scorer, every_window=True, stride=stride)
    want = [r for r in (one.feed(*f) for f in replay(frames)) if r is not None]
    blocks = Detector(scorer, every_window=True, stride=stride, max_batch=64)
    got = []
    blocks.feed_block = (lambda feed: lambda b: got.extend(feed(b)) or [])(blocks.feed_block)
    summary = blocks.run_blocks(replay_blocks(frames, size))
    assert len(want) == (count - 100) // stride + 1 and summary.windows == len(got) == len(want)
    assert [r["window"] for r in got] == [r["window"] for r in want]  # same windows, same order
    assert [r["decision"] for r in got] == [r["decision"] for r in want]
    assert [r.get("unknown_ids") for r in got] == [r.get("unknown_ids") for r in want]
    assert [r["label"] for r in got] == [r["label"] for r in want]
    assert any(r["label"] for r in want) and not all(r["label"] for r in want)
    np.testing.assert_allclose([r["score"] for r in got], [r["score"] for r in want], rtol=1e-6, atol=1e-7)
    if kind == "vgae":  # window by window through the same model: the same floats
        assert [r["score"] for r in got] == [r["score"] for r in want]
        assert [r["top_ids"] for r in got] == [r["top_ids"] for r in want]
    assert summary.alerts == one.summary.alerts and summary.frames == count
    assert len(summary.cpu_latencies) == len(got)


def test_a_malformed_row_in_a_replay_is_counted_and_skipped(
    runs: dict[str, Path], data_root: Path, tmp_path: Path, capsys
) -> None:
    lines = _test_file(data_root).read_text().splitlines()
    broken = tmp_path / "DoS-broken.csv"
    broken.write_text("\n".join([*lines[:500], "1513920000.1,XYZ,00,0", *lines[500:1200]]) + "\n")
    summary = tmp_path / "summary.json"
    assert detect_main([str(runs["gat"]), "--replay", str(broken), "--summary", str(summary)]) == 0
    done = json.loads(summary.read_text())
    assert done["malformed"] == 1 and done["frames"] == 1199 and done["windows"] == 11


def _send(channel: str, messages: list[can.Message], started: threading.Event) -> None:
    with can.Bus(interface="virtual", channel=channel, preserve_timestamps=True) as bus:  # as recorded
        started.set()
        for msg in messages:
            bus.send(msg)


@pytest.mark.parametrize("blocks", [False, True])
def test_virtual_bus_detection_equals_replay_and_skips_malformed_frames(
    blocks: bool, runs: dict[str, Path], data_root: Path
) -> None:
    frames = read_frames(_test_file(data_root), "can4").slice(1500, 3500)  # benign, then flooding
    messages = [
        can.Message(
            timestamp=float(frames.time[k]),
            arbitration_id=int(frames.can_id[k]),
            is_extended_id=False,
            data=frames.payload[k, : frames.dlc[k]].tobytes(),
        )
        for k in range(len(frames))
    ]
    messages[700:700] = [
        can.Message(is_error_frame=True),
        can.Message(arbitration_id=0x7DF, is_remote_frame=True, dlc=8),
        can.Message(arbitration_id=0x7E0, is_fd=True, data=bytes(16)),
    ]
    scorer = load_scorer(export_run(runs["gat"], "onnx"))
    replayed = Detector(scorer, every_window=True)
    replay_records = [replayed.feed(*f) for f in replay(frames)]
    bus = open_bus("virtual:kdgat-deploy-test")
    started = threading.Event()
    sender = threading.Thread(target=_send, args=("kdgat-deploy-test", messages, started))
    sender.start()
    started.wait(5)
    live = Detector(scorer)
    records = []
    if blocks:  # whatever waits on the bus, drained into blocks of up to 257 frames
        live.feed_block = (lambda feed: lambda b: records.extend(feed(b)))(live.feed_block)
        summary = live.run_blocks(
            bus_blocks(bus, idle_timeout=2.0, max_frames=None, size=257, max_wait=0.002)
        )
    else:
        live.feed = (lambda feed: lambda *f: records.append(feed(*f)))(live.feed)
        summary = live.run(bus_frames(bus, idle_timeout=2.0, max_frames=None))
    sender.join()
    assert summary.frames == len(frames) and summary.malformed == 3
    want = [r["score"] for r in replay_records if r is not None]
    got = [r["score"] for r in records if r is not None]
    assert len(got) == len(want) == 20
    np.testing.assert_array_equal(got, want)
    assert summary.alerts == replayed.summary.alerts > 0
    assert all("label" not in r for r in records if r is not None)  # a live bus has no labels


def test_a_bad_bus_spec_exits_2_with_the_expected_form(runs: dict[str, Path], capsys) -> None:
    assert detect_main([str(runs["gat"]), "--bus", "can0"]) == 2
    assert "INTERFACE:CHANNEL" in capsys.readouterr().err


def test_a_sage_run_is_refused_by_export_and_detection_with_what_to_do(
    data_root: Path, tmp_path: Path, capsys
) -> None:
    """SAGE's row in configs.ARCHITECTURES says its runs do not export: both commands exit 2 with
    the reason and what to do instead, and write nothing."""
    cfg = ExperimentConfig(
        dataset="hcrlsa",
        model_architecture="SAGE",
        model_size="tiny",
        device="cpu",
        runs_root=tmp_path / "runs",
        dataset_config=DatasetConfig(data_root=data_root, cache_dir=tmp_path / "cache"),
        training_config=TrainingConfig(epochs=1),
    )
    run_dir = run_experiment(cfg)
    assert export_main([str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "SAGE runs do not export: the exporters (kdgat/deploy) rewrite GATv2 and VGAE layers only" in err
    assert "Export a VGAE or GAT run instead" in err and f"python -m kdgat.evaluate {run_dir}" in err
    assert "Traceback" not in err and not list(run_dir.glob("*.onnx")) and not (run_dir / "export").exists()
    assert detect_main([str(run_dir), "--replay", str(_test_file(data_root))]) == 2
    assert "SAGE runs do not export" in capsys.readouterr().err


def test_saturated_bus_rate_counts_frame_bits(data_root: Path) -> None:
    frames = read_frames(_test_file(data_root), "can4")
    eight = frames.select(frames.dlc == 8)
    assert set(frame_bits(eight).tolist()) == {111}  # 47 + 64: 11-bit ID, 8 bytes, no stuffing
    assert saturated_rate(eight, 500_000) == pytest.approx(500_000 / 111)
    assert saturated_rate(frames, 1_000_000) == pytest.approx(2 * saturated_rate(frames, 500_000))


def test_deployment_report_puts_runs_side_by_side(runs: dict[str, Path], capsys) -> None:
    assert export_main([str(runs["gat"]), str(runs["fusion"]), "--report", "--frames", "1500"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((runs["gat"] / "deployment_report.json").read_text())
    assert (runs["gat"] / "deployment_report.md").read_text() in printed
    gat, fusion = report["runs"]
    assert gat["batched_model"] and not fusion["batched_model"]  # a fusion GAT scores graph by graph
    assert fusion["parameters"] > gat["parameters"] == Run.open(runs["gat"]).metrics["params"]
    for r in (gat, fusion):
        assert r["artefact_bytes"] == (Path(r["run"]) / "export" / "model.onnx").stat().st_size
        native = r is gat  # a GAT classifier has a native model; a fusion GAT does not
        assert ("model_only_native_ms" in r) is native
        # and its native model calibrated on the capture's first seconds
        suffixes = ("", "_incremental", "_batched", "_blocks") + (
            ("_native", "_native_calibrated") if native else ()
        )
        for stride, windows in ((1, 1401), (100, 15)):
            assert (f"stride_{stride}_native" in r) is native
            modes = [r[f"stride_{stride}{suffix}"] for suffix in suffixes]
            assert [m["windows"] for m in modes] == [windows] * len(suffixes)
            assert [(m["max_batch"], m["block"], m["builder"], m["runtime"]) for m in modes] == [
                (1, 0, "compiled", "onnx"),
                (1, 0, "incremental", "onnx"),
                (64, 0, "compiled", "onnx"),
                (64, 64 * stride, "build_raw", "onnx"),
            ] + ([(1, 0, "compiled", "native")] * 2 if native else [])
        assert r["max_batch"] == 64
        assert 0 < r["model_only_ms"]["p50"] <= r["model_only_ms"]["p99"]
        keys = [f"stride_{s}{m}" for s in (1, 100) for m in suffixes]
        for stride, clock in [(s, c) for s in keys for c in ("cpu", "wall")]:
            s = r[stride][clock]
            margin = s["frames_per_s"] / r["saturated_frames_per_s"]["500k"]
            assert s["margin"]["500k"] == pytest.approx(margin, rel=1e-2, abs=6e-3)  # rounded to 0.01
            assert s["latency_ms"]["p50"] >= s["inference_ms"]["p50"] > 0
            split = r[stride]["cpu_us_per_window"]
            assert split["total"] == pytest.approx(split["inference"] + split["rest"], abs=0.2)
            assert 0 < split["inference"] < split["total"]
    assert "blocks of 64 strides" in printed and "model only" in printed
    assert "one at a time, native model calibrated on the car" in printed
    assert gat["calibration_seconds"] > 0 and "calibration_seconds" not in fusion
    # The latency goal compares each model on its fastest one-at-a-time runtime, named.
    assert "each model its fastest runtime" in printed and "one at a time, native model" in printed
    ratio = next(line for line in printed.splitlines() if "each model its fastest runtime" in line)
    fastest = [
        min(r[k]["cpu"]["latency_ms"]["p50"] for k in ("stride_1", "stride_1_native") if k in r)
        for r in (gat, fusion)
    ]
    want = fastest[1] / fastest[0]  # the fusion GAT is the larger model
    assert f"{want:.2f}x (goal 5x)" in ratio
