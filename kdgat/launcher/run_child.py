"""`python -m kdgat.launcher.run_child RUN_DIR`: one run of a packed task, in its own process.

A packed task (kdgat.launcher.packed_job) starts one of these per run: the run continues in
RUN_DIR as configured in its config.yaml (from checkpoints/last.pt when present). Its own process
gives it its own torch threads, CUDA context and signal handlers. The exit code tells the task how
it ended: 0 finished, EXIT_PREEMPTED state saved (a stop signal), EXIT_USER_ERROR refused (a user
mistake, recorded in status.json), anything else failed.
"""

import signal
import sys
from pathlib import Path
from typing import Any

EXIT_USER_ERROR = 2
EXIT_PREEMPTED = 75  # as train.py: EX_TEMPFAIL, continue later from last.pt


def main(argv: list[str]) -> int:
    run_dir = Path(argv[0])
    from kdgat.common.errors import UserError
    from kdgat.config.codec import load_yaml
    from kdgat.training.skeleton import Preempted

    def stop_early(signum: int, frame: Any) -> None:
        # A stop signal before the training loop installs its own handler (loading data) or after
        # it (evaluating): nothing to save beyond last.pt, so end as preempted and resume later.
        raise Preempted(f"signal {signum} outside the training loop", {signum})

    for sig in (signal.SIGTERM, signal.SIGUSR2):
        signal.signal(sig, stop_early)
    last = run_dir / "checkpoints" / "last.pt"
    if last.is_file():
        print(f"resuming {run_dir} from {last}", flush=True)
    try:
        from kdgat.experiment import run_experiment

        run_experiment(load_yaml(run_dir / "config.yaml"), run_dir)
    except Preempted as stop:
        print(f"stopped by {stop}; state saved in {run_dir}", file=sys.stderr, flush=True)
        return EXIT_PREEMPTED
    except UserError as err:  # run_experiment has recorded it in status.json
        print(f"error: {err}", file=sys.stderr, flush=True)
        return EXIT_USER_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
