"""Run independent per-file jobs on every core, in order, with a callback as each one finishes.

Worker processes, not threads: preprocessing is thousands of numpy calls per file, many of them
short and holding the GIL, so two threads only reach ~1.2-1.4x on two cores. Workers are forked
(the start method PyTorch's DataLoader uses on Linux): they start in milliseconds with the modules
already imported, where spawn would re-import torch in each. Where fork is unavailable, or the
work is too small to pay for a fork, jobs run in threads or inline.
"""

import concurrent.futures
import ctypes
import multiprocessing
import signal
from collections.abc import Callable, Sequence
from typing import TypeVar

from kdgat.common.cpus import cpu_share

Job = TypeVar("Job")
Result = TypeVar("Result")


def cores() -> int:
    """CPUs this run may use: its affinity mask, divided among the runs the launcher's local
    executor starts on the same CPUs (kdgat.common.cpus)."""
    return cpu_share()


def _worker_init() -> None:
    # A forked worker inherits the trainer's SIGTERM handler (requeue on Slurm); it must simply
    # die with the pool instead of trying to checkpoint.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _keep_freed_memory()


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters (malloc.h)


def _keep_freed_memory() -> None:
    """Let this worker's malloc reuse freed memory instead of returning it to the kernel.

    The graph builder makes many short-lived arrays of 1-50 MB; by default glibc maps each from
    the kernel and unmaps it on free, so every new one pays page faults and zero-filling (~17% of
    cold preprocessing CPU, measured). A worker lives for one preprocessing pass, so keeping its
    peak heap is harmless. glibc only; elsewhere this does nothing."""
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, 1 << 30)
    mallopt(_M_TRIM_THRESHOLD, 1 << 30)


def run_jobs(
    fn: Callable[..., Result],
    jobs: Sequence[tuple],
    workers: int,
    processes: bool,
    done: Callable[[Result], None] | None = None,
) -> list[Result]:
    """[fn(*job) for job in jobs], on `workers` processes (or threads when processes is False or
    fork is unavailable); `done` is called with each result in job order. An exception in a job
    is raised here, after the pool has shut down."""
    results: list[Result] = []
    workers = max(1, min(workers, len(jobs)))
    if workers == 1:
        for job in jobs:
            results.append(fn(*job))
            if done:
                done(results[-1])
        return results
    if processes and "fork" in multiprocessing.get_all_start_methods():
        pool: concurrent.futures.Executor = concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("fork"), initializer=_worker_init
        )
    else:
        pool = concurrent.futures.ThreadPoolExecutor(workers)
    with pool:
        futures = [pool.submit(fn, *job) for job in jobs]
        try:
            for future in futures:
                results.append(future.result())
                if done:
                    done(results[-1])
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return results
