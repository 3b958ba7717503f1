"""The callable a packed task runs (--runs-per-task K): its runs, each in its own process.

Each run is `python -m kdgat.launcher.run_child RUN_DIR` (its own torch threads, CUDA context and
signal handlers), pinned to its slice of the task's CPUs, writing RUN_DIR/train.log; how many go
at once is kdgat.launcher.packing.decide's answer at task start. A run that fails leaves the others
running; the task then fails (so afterok dependants do not start) and names the runs.

Preemption and time limits: Slurm signals every process of the task, and the task forwards a stop
signal to its runs too (the local executor signals the task only). Each run saves last.pt and ends
as preempted; no further run starts. Once all have ended, USR2 hands over to submitit, which calls
`checkpoint()` and requeues the task: the requeued task skips its finished runs and resumes the
others from their last.pt. A run finished, failed or preempted keeps its own status.json.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import submitit
import yaml

from kdgat.common.cpus import THREAD_ENV, runs_sharing, share
from kdgat.common.gpus import GPU_SHARE_ENV
from kdgat.launcher.job import hand_to_submitit, job_environment, launcher_info
from kdgat.launcher.packing import Gpu, Slots, decide
from kdgat.launcher.run_child import EXIT_PREEMPTED

RUN_LOG = "train.log"  # in the run dir: the run's own stdout and stderr (a packed task's runs interleave)
POLL_S = 0.2


def finished(run_dir: Path) -> bool:
    from kdgat.runs.store import read_status

    return read_status(run_dir).get("state") == "finished" and (run_dir / "metrics.json").is_file()


def _uses_gpu(run_dir: Path) -> bool:
    config = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    return config.get("device", "auto") != "cpu"


def probe(run_dirs: list[Path]) -> tuple[list[Gpu], int | None, str]:
    """The GPUs this task sees and one run's estimated need, from a child process (gpu_probe)."""
    out = subprocess.run(
        [sys.executable, "-m", "kdgat.launcher.gpu_probe", *map(str, run_dirs)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return [], None, f"the GPU probe failed ({tail})"
    found = json.loads(out.stdout.strip().splitlines()[-1])
    return [Gpu(**g) for g in found["gpus"]], found["per_run_bytes"] or None, ""


def _limit_to(cpus: list[int]) -> None:
    """In the child before exec: its CPU slice, and SIGTERM if the task dies (never an orphan run)."""
    os.sched_setaffinity(0, cpus)
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def run_env(slots: Slots, slot: int) -> dict[str, str]:
    """What the environment tells the run of a slot: its thread pools' size (its CPU slice, which
    is also its affinity mask, so `--training.torch-threads auto` follows: kdgat.common.cpus), its
    GPU and its share of that GPU's memory (kdgat.common.gpus)."""
    env = dict.fromkeys(THREAD_ENV, str(share(len(slots.cpu_slices[slot]), runs_sharing())))
    gpu = slots.gpus[slot]
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
        env[GPU_SHARE_ENV] = f"{1 / slots.gpus.count(gpu):.6g}"
    return env


class _Running:
    """The runs started so far: each a process writing its train.log, on a slot of the task."""

    def __init__(self, slots: Slots) -> None:
        self.slots = slots
        self.free = list(range(slots.at_once))
        self.procs: dict[int, tuple[subprocess.Popen, Path, Any]] = {}

    def start(self, run_dir: Path) -> int:
        slot = self.free.pop(0)
        cpus = self.slots.cpu_slices[slot]
        log = (run_dir / RUN_LOG).open("a")
        proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "kdgat.launcher.run_child", str(run_dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **run_env(self.slots, slot)},
            preexec_fn=lambda: _limit_to(cpus),  # the task is single-threaded: safe
        )
        self.procs[slot] = (proc, run_dir, log)
        return slot

    def ended(self) -> list[tuple[Path, int]]:
        done = []
        for slot, (proc, run_dir, log) in list(self.procs.items()):
            if proc.poll() is not None:
                log.close()
                del self.procs[slot]
                self.free.append(slot)
                done.append((run_dir, proc.returncode))
        return done

    def signal_all(self, signum: int) -> None:
        for proc, _, _ in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signum)


class _Forward:
    """While the runs go: a stop signal is recorded and passed on to them (submitit's own handler
    comes back afterwards, for the requeue)."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR2)

    def __init__(self, running: _Running) -> None:
        self.running = running
        self.seen: set[int] = set()
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> "_Forward":
        for sig in self.SIGNALS:
            with contextlib.suppress(ValueError):  # not the main thread
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.seen.add(signum)
        self.running.signal_all(signum)

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


class PackedJob(submitit.helpers.Checkpointable):
    """The runs of one task (claimed run dirs). Picklable: paths, a stage name and a number."""

    def __init__(self, run_dirs: list[str], stage: str | None = None, gpu_bytes_per_run: int | None = None):
        self.run_dirs = run_dirs
        self.stage = stage
        self.gpu_bytes_per_run = gpu_bytes_per_run

    def slots(self, todo: list[Path]) -> Slots:
        cpus = sorted(os.sched_getaffinity(0))
        gpus: list[Gpu] = []
        per_run: int | None = None
        problem = ""
        if any(_uses_gpu(d) for d in todo):
            gpus, estimate, problem = probe(todo)
            per_run = self.gpu_bytes_per_run or estimate
        slots = decide(len(todo), cpus, gpus, per_run, runs_sharing())
        if problem:  # unknown GPU: one at a time is the choice that cannot run out of memory
            slots = decide(1, cpus, [], None)
            slots = Slots(1, f"{problem}: one run at a time", slots.cpu_slices, [None])
        return slots

    def __call__(self) -> list[str]:
        env = job_environment()
        dirs = [Path(d) for d in self.run_dirs]
        todo = [d for d in dirs if not finished(d)]
        for d in dirs:
            if d not in todo:
                print(f"[{self.stage}] {d}: finished already, skipped", flush=True)
        slots = self.slots(todo)
        print(f"[{self.stage}] {len(todo)} run(s) to run, {slots.at_once} at once: {slots.why}", flush=True)
        base = {**launcher_info(env, self.stage), "packed": {"task_runs": len(dirs), **slots.describe()}}
        running, results = _Running(slots), {}
        with _Forward(running) as stop:
            queue = list(todo)
            while queue or running.procs:
                while queue and running.free and not stop.seen:
                    self._start(running, queue.pop(0), base)
                for run_dir, code in running.ended():
                    results[run_dir] = self._ended(run_dir, code, stop.seen)
                time.sleep(POLL_S)
        return self._outcome(dirs, results, stop.seen, env)

    def _start(self, running: _Running, run_dir: Path, base: dict[str, Any]) -> None:
        """Record where the run goes (its log, its CPUs and GPU) in its status.json, then start it."""
        from kdgat.runs.store import update_status

        slot = running.free[0]
        where = {"cpus": running.slots.cpu_slices[slot], "gpu": running.slots.gpus[slot]}
        packed = {**base["packed"], **where}
        update_status(run_dir, launcher={**base, "log": str(run_dir / RUN_LOG), "packed": packed})
        running.start(run_dir)
        gpu = f", GPU {where['gpu']}" if where["gpu"] is not None else ""
        print(f"[{self.stage}] started {run_dir} (CPUs {where['cpus']}{gpu})", flush=True)

    def _ended(self, run_dir: Path, code: int, stops: set[int]) -> str:
        """Record how a run's process ended (when it could not say so itself) and report it."""
        from kdgat.runs.store import now, read_status, update_status

        state = read_status(run_dir).get("state")
        if finished(run_dir):  # a stop signal may reach it after metrics.json, on its way out
            outcome = "finished"
        elif code == EXIT_PREEMPTED or (code < 0 and stops):
            outcome = "preempted"
            if state != "preempted":  # stopped before it could save anything: nothing lost
                update_status(run_dir, state="preempted", error=f"stopped by {_signal_name(-code)}")
        else:
            outcome = "failed"
            why = f"killed by {_signal_name(-code)}" if code < 0 else f"exited with code {code}"
            if state != "failed":
                update_status(run_dir, state="failed", error=f"{why} while {state}", finished_at=now())
        print(f"[{self.stage}] {outcome}: {run_dir}", flush=True)
        if outcome == "failed":
            from kdgat.launcher.failures import log_tail

            tail = "\n".join(f"    {line}" for line in log_tail(run_dir / RUN_LOG))
            print(f"[{self.stage}] {run_dir} failed; last lines of its {RUN_LOG}:\n{tail}", file=sys.stderr)
        return outcome

    def _outcome(self, dirs: list[Path], results: dict[Path, str], stops: set[int], env: Any) -> list[str]:
        failed = [str(d) for d, outcome in results.items() if outcome == "failed"]
        if stops:
            hand_to_submitit(stops, env)  # USR2 on Slurm: requeued, never returns
            left = [str(d) for d in dirs if not finished(d)]
            raise RuntimeError(
                f"stopped by {', '.join(_signal_name(s) for s in sorted(stops))}: {len(left)} run(s) "
                f"unfinished, their state saved; `python launch.py retry` resumes them"
            )
        if failed:
            raise RuntimeError(
                f"{len(failed)} of {len(dirs)} run(s) of this task failed: {', '.join(failed)} "
                f"(each run's {RUN_LOG} says why; `python launch.py status` shows it)"
            )
        return [str(d) for d in dirs]

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        """Called by submitit on USR2: the same task again, resuming its unfinished runs."""
        from kdgat.runs.store import now, read_status, update_status

        for d in map(Path, self.run_dirs):
            if not finished(d):
                requeues = int(read_status(d).get("requeues", 0)) + 1
                update_status(d, state="requeued", requeues=requeues, requeued_at=now())
        again = PackedJob(self.run_dirs, self.stage, self.gpu_bytes_per_run)
        return submitit.helpers.DelayedSubmission(again)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
