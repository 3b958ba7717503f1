"""Training on a GPU against the CPU, in one prepared script: epoch time, graphs/s, peak GPU memory,
host syncs per step, and whether a run killed mid-epoch and resumed ends with the weights of an
uninterrupted one.

    python benchmarks/gpu.py [--size student] [--epochs 3] [--frames 60000] [--batch-size 64]
        [--runs-root DIR] [--no-resume] [--no-cpu] [--quick]

Every row trains the same experiment: a GAT classifier (all_samples) on generated CAN traffic
(--frames training frames, a quarter of that for test), --epochs epochs without early stopping,
seed 0. Rows: the CPU (amp off), then on CUDA fp32 (amp off), fp16 (autocast + GradScaler) and
bf16 (only where the GPU computes it: compute capability >= 8.0; the row says why it is skipped
below). On a machine without CUDA the CPU row is measured and the table says CUDA is absent.

Columns:
- epoch s: mean seconds of an epoch (training + validation) over the epochs after the first, which
  pays for warm-up (CUDA context, kernel selection); graphs/s: training graphs / epoch s; x CPU:
  the CPU row's epoch s / this row's, both measured here;
- peak GPU MiB: torch.cuda.max_memory_allocated over the whole run (training, validation, test);
- syncs/step: reads the host waited for in one training step (kdgat.training.host_reads, over 8
  steps after 4 warm-up steps, the loss log's one read per 32 steps not among them). "step": the
  forward pass, loss, backward and optimizer step (0 is the goal; fp16's GradScaler reads one value
  per step by design); "batching": gathering the batch (kdgat/data); "PyG": GATv2Conv's removal of
  self-loops (two per layer). On the CPU row every such read is counted as if the tensors were on a
  GPU (a stand-in: the CPU never waits); on CUDA rows only reads of device tensors count (today's
  batches are gathered in host memory, so their reads cost nothing there);
- rerun: a second uninterrupted run gives bit-identical weights (GPU run-to-run determinism);
  resume: a run stopped by SIGUSR2 mid-epoch 2 and resumed from last.pt gives bit-identical
  weights to the uninterrupted one; beside each, the largest weight difference when not.
"""

import argparse
import contextlib
import dataclasses
import signal
import statistics
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

import configs  # noqa: E402
from kdgat.config.codec import load_yaml  # noqa: E402
from kdgat.config.resolve import resolve  # noqa: E402
from kdgat.data.dataset import load_splits  # noqa: E402
from kdgat.experiment import run_experiment  # noqa: E402
from kdgat.models import build_graph_model  # noqa: E402
from kdgat.training import graph_trainer  # noqa: E402
from kdgat.training.checkpoint import read_checkpoint  # noqa: E402
from kdgat.training.device import deterministic_cublas, gpu_record  # noqa: E402
from kdgat.training.host_reads import HostReads  # noqa: E402
from kdgat.training.optim import NATIVE_BF16, Optimisation, native_bf16  # noqa: E402
from kdgat.training.skeleton import Preempted  # noqa: E402
from kdgat.training.tasks import ClassifierTask  # noqa: E402

SYNC_WARMUP, SYNC_STEPS = 4, 8
STOP_AT = (1, 2)  # (epoch, step) after which the resumed run is stopped


@dataclasses.dataclass
class Row:
    device: str
    amp: str
    epoch_s: float | None = None
    graphs_per_s: float | None = None
    peak_mib: float | None = None
    syncs: tuple[float, float, float] | None = None
    rerun: str = "-"
    resume: str = "-"
    note: str = ""


def experiment(args: argparse.Namespace, device: str, amp: str, root: Path) -> configs.ExperimentConfig:
    return resolve(
        configs.ExperimentConfig(
            model_size=args.size,
            device=device,  # type: ignore[arg-type]
            runs_root=root,
            dataset_config=configs.DatasetConfig(
                cache_dir=args.runs_root / "cache",
                automotive=configs.AutomotiveConfig(
                    synthetic_train_frames=args.frames, synthetic_test_frames=max(args.frames // 4, 9000)
                ),
            ),
            training_config=configs.TrainingConfig(
                epochs=args.epochs,
                patience=args.epochs + 1,
                amp=amp,
                batch_size=args.batch_size,  # type: ignore[arg-type]
            ),
        )
    )


def epoch_seconds(run_dir: Path) -> float:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    seconds = [e.value for e in events.Scalars("charts/epoch_seconds")]
    return statistics.mean(seconds[1:] or seconds)


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(run_dir / "checkpoints/last.pt").model


def compare(a: Path, b: Path) -> str:
    wa, wb = weights(a), weights(b)
    worst = max((wa[k].double() - wb[k].double()).abs().max().item() for k in wa)
    return "identical" if worst == 0 else f"differs ({worst:.1e})"


@contextlib.contextmanager
def stopped_at(at: tuple[int, int]) -> Iterator[None]:
    """GraphTrainer.step raises SIGUSR2 (Slurm's requeue signal) after step `at` of the run."""
    original = graph_trainer.GraphTrainer.step

    def step(self, epoch: int, step: int, *rest) -> None:  # type: ignore[no-untyped-def]
        original(self, epoch, step, *rest)
        if (epoch, step) == at:
            signal.raise_signal(signal.SIGUSR2)

    graph_trainer.GraphTrainer.step = step  # type: ignore[method-assign]
    try:
        yield
    finally:
        graph_trainer.GraphTrainer.step = original  # type: ignore[method-assign]


def resumed_run(cfg: configs.ExperimentConfig) -> Path:
    """A run stopped mid-epoch by a signal, then resumed from its last.pt as train.py --resume does."""
    try:
        with stopped_at(STOP_AT):
            run_experiment(cfg)
    except Preempted as stop:
        assert stop.run_dir is not None
        return run_experiment(load_yaml(stop.run_dir / "config.yaml"), stop.run_dir)
    raise RuntimeError(f"the run finished before step {STOP_AT} of epoch {STOP_AT[0]}: give more --frames")


def syncs_per_step(cfg: configs.ExperimentConfig, device: torch.device) -> tuple[float, float, float]:
    """Host syncs per training step on the run's own data and model: (the step's, batching's, PyG's)."""
    splits = load_splits(cfg)
    train = splits.train
    torch.manual_seed(0)
    model = build_graph_model(cfg, splits.num_ids, train.node_dim, train.edge_dim)
    trainer = graph_trainer.GraphTrainer(cfg, ClassifierTask(cfg, train), model, splits.val, device)
    opt = Optimisation(cfg, trainer.parameters(), device)
    order = trainer.batches(0)
    with tempfile.TemporaryDirectory() as tmp, graph_trainer.SummaryWriter(tmp) as writer:
        trainer.start_epoch(0)
        for step in range(SYNC_WARMUP):
            trainer.step(0, step, order[step % len(order)], opt, writer)
        counters = [state["step"] for state in opt.optimizer.state.values()]
        with HostReads(allowed=counters, any_device=device.type == "cpu") as reads:
            for step in range(SYNC_WARMUP, SYNC_WARMUP + SYNC_STEPS):
                trainer.step(0, step, order[step % len(order)], opt, writer)
    if reads.reads:
        print(f"  {cfg.device} {cfg.training_config.amp}: host syncs at {sorted(set(reads.reads))}")
    batching = sum(" at data/" in read for read in reads.reads)
    step = len(reads.reads) - batching
    return step / SYNC_STEPS, batching / SYNC_STEPS, reads.pyg_self_loops / SYNC_STEPS


def measure(args: argparse.Namespace, device: str, amp: str, label: str) -> Row:
    row = Row(device, label)
    root = args.runs_root / f"{device}_{label}"
    cfg = experiment(args, device, amp, root / "straight")
    on_gpu = device == "cuda"
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    run_dir = run_experiment(cfg)
    if on_gpu:
        row.peak_mib = torch.cuda.max_memory_allocated() / 2**20
    row.epoch_s = epoch_seconds(run_dir)
    row.graphs_per_s = len(load_splits(cfg).train) / row.epoch_s
    row.syncs = syncs_per_step(cfg, torch.device(device))
    if args.resume:
        row.rerun = compare(run_dir, run_experiment(experiment(args, device, amp, root / "rerun")))
        row.resume = compare(run_dir, resumed_run(experiment(args, device, amp, root / "resumed")))
    return row


def cuda_rows(args: argparse.Namespace) -> list[Row]:
    cuda = torch.device("cuda")
    rows = [measure(args, "cuda", "off", "fp32"), measure(args, "cuda", "fp16", "fp16")]
    if native_bf16(cuda):
        rows.append(measure(args, "cuda", "bf16", "bf16"))
    else:
        major, minor = torch.cuda.get_device_capability(cuda)
        rows.append(
            Row(
                "cuda",
                "bf16",
                note=f"skipped: compute capability {major}.{minor} < "
                f"{NATIVE_BF16[0]}.{NATIVE_BF16[1]} (kdgat refuses emulated bf16)",
            )
        )
    return rows


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def table(rows: list[Row]) -> str:
    cpu = next((r.epoch_s for r in rows if r.device == "cpu"), None)
    lines = [
        "| device | amp | epoch s | graphs/s | x CPU | peak GPU MiB | syncs/step: step | batching | PyG "
        "| rerun | resume |",
        "|---" * 11 + "|",
    ]
    for r in rows:
        if r.note:
            lines.append(f"| {r.device} | {r.amp} | {r.note} |" + " |" * 8)
            continue
        ratio = cpu / r.epoch_s if cpu and r.epoch_s else None
        step, batching, pyg = r.syncs if r.syncs else (None, None, None)
        lines.append(
            f"| {r.device} | {r.amp} | {_num(r.epoch_s, '.2f')} | {_num(r.graphs_per_s, '.0f')} | "
            f"{_num(ratio, '.1f')} | {_num(r.peak_mib, '.0f')} | {_num(step, 'g')} | {_num(batching, 'g')} | "
            f"{_num(pyg, 'g')} | "
            f"{r.rerun} | {r.resume} |"
        )
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="student", choices=list(configs.SIZE_TABLE))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--frames", type=int, default=60000, help="synthetic training frames")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--runs-root", type=Path, default=None, help="default: a new temporary folder")
    p.add_argument("--no-resume", dest="resume", action="store_false", help="skip the rerun and resume runs")
    p.add_argument("--no-cpu", dest="cpu", action="store_false", help="skip the CPU row (no x CPU column)")
    p.add_argument("--quick", action="store_true", help="tiny model, 2 epochs, 30000 frames")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.quick:
        args.size, args.epochs, args.frames = "tiny", 2, 30000
    args.runs_root = args.runs_root or Path(tempfile.mkdtemp(prefix="kdgat-gpu-"))
    deterministic_cublas()  # before anything touches CUDA, as run_experiment does
    rows = [measure(args, "cpu", "off", "off")] if args.cpu else []
    if torch.cuda.is_available():
        gpu = gpu_record(torch.device("cuda"))
        print(f"CUDA: {gpu}")
        rows += cuda_rows(args)
    else:
        print("CUDA: absent (torch.cuda.is_available() is False): CPU rows only")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; GAT classifier, size "
        f"{args.size}, {args.epochs} epochs, {args.frames} synthetic training frames, batch "
        f"{args.batch_size}; runs in {args.runs_root}"
    )
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
