"""`python launch.py transfer`: the transfer matrix's evaluations as one Slurm array job.

    python launch.py transfer RUN... --on NAME=PATH [--on ...] [--calibrate NAME=FILE[@SECONDS]]
        [--dataset D] [--executor slurm|local|debug] [--dry-run] [--wait] [--png transfer.png]
        [--osc-config.account PAS1234 ...]

The same evaluations as `python -m kdgat.transfer` (each finished RUN on each target, through
kdgat.evaluate, which writes RUN/eval_NAME.json), one array task per (run, target), at most
--parallelism at once. Slurm resources are the first run's osc_config (the account and cluster
it trained under), with any --osc-config.FIELD given here taking precedence. With --wait (always
for local and debug) the matrix is printed and the heatmap saved once every task has ended;
otherwise `python -m kdgat.results RUN... --transfer --transfer-rows run --png F` shows it later.
Everything is checked before anything is submitted: each RUN must be a finished run, each
target and calibration capture must exist.
"""

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

import configs
from configs import ConfigError, OscConfig
from kdgat.cli.calibration_options import threshold_overrides
from kdgat.cli.transfer import add_transfer_arguments, parse_targets
from kdgat.config.codec import load_yaml
from kdgat.config.repeats import flag_table, merge_repeats
from kdgat.launcher.args import extra_sbatch
from kdgat.runs.store import read_status

EXIT_JOBS_FAILED = 1
LOG_PRESET = "transfer evaluations"  # what `launch.py status` shows for the job


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """One array task: a run on a target (a folder, a capture), maybe calibrated."""

    run: Path
    name: str
    target: Path
    dataset: str | None
    calibration: Path | None
    calibration_seconds: float | None
    thresholds: tuple[tuple[str, Any], ...] = ()
    """--calibration-threshold, -quantile, -margin given (ThresholdConfig fields, sorted)."""

    def describe(self) -> str:
        calibrated = ""
        if self.calibration is not None:
            seconds = "" if self.calibration_seconds is None else f"@{self.calibration_seconds:g}"
            calibrated = f", calibrated on {self.calibration}{seconds}"
            calibrated += "".join(f", {k} {v}" for k, v in self.thresholds)
        return f"{self.run} on {self.name} = {self.target}{calibrated}"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="launch.py transfer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_transfer_arguments(p)
    p.add_argument("--executor", choices=("slurm", "local", "debug"), default="slurm")
    p.add_argument(
        "--dry-run", action="store_true", help="print the tasks and the sbatch script; submit nothing"
    )
    p.add_argument("--wait", action="store_true", help="Slurm: wait for every task, then print the matrix")
    p.add_argument("--parallelism", type=int, default=8, help="most tasks running at once")
    p.add_argument(
        "--runs-root", type=Path, default=Path("runs"), help="where slurm/ logs and launches.jsonl go"
    )
    p.add_argument("--job-name", default="kdgat-transfer")
    p.add_argument(
        "--sbatch", action="append", default=[], metavar="KEY=VALUE", help="further sbatch options"
    )
    for f in dataclasses.fields(OscConfig):
        flag = f"--osc-config.{f.name.replace('_', '-')}"
        if f.name == "setup":
            p.add_argument(
                flag, nargs="+", default=None, dest="osc_setup", help="shell lines run before each task"
            )
        else:
            kind = int if isinstance(f.default, int) else str
            p.add_argument(
                flag, type=kind, default=None, dest=f"osc_{f.name}", help="default: the first run's"
            )
    return p


def finished(run: Path) -> configs.ExperimentConfig:
    """A finished run's config, or a ConfigError saying why the run cannot be evaluated."""
    state = read_status(run).get("state", "no status.json")
    if state != "finished" or not (run / "metrics.json").is_file() or not (run / "config.yaml").is_file():
        raise ConfigError(
            f"{run} is not a finished run (state={state}); give the directory of a run whose "
            f"training finished (python launch.py status lists them)."
        )
    return load_yaml(run / "config.yaml")


def evaluations(args: argparse.Namespace) -> list[Evaluation]:
    targets, calibrations = parse_targets(args.on, args.calibrate)
    thresholds = tuple(sorted(threshold_overrides(args).items()))
    for name, path in [*targets.items(), *((n, c[0]) for n, c in calibrations.items())]:
        if not path.exists():
            raise ConfigError(f"{name}: {path} does not exist; give an existing capture file or folder.")
    return [
        Evaluation(
            run.resolve(),
            name,
            path.resolve(),
            args.dataset,
            *_calibration(calibrations.get(name)),
            thresholds,
        )
        for run in args.runs
        for name, path in targets.items()
    ]


def _calibration(given: tuple[Path, float | None] | None) -> tuple[Path | None, float | None]:
    return (None, None) if given is None else (given[0].resolve(), given[1])


def osc_config(args: argparse.Namespace, first_run: configs.ExperimentConfig) -> OscConfig:
    """The first run's osc_config with every --osc-config.FIELD given on the command line over it,
    asking for no GPU: evaluations score on the CPU (kdgat.scoring), so a GPU would sit idle, billed."""
    from kdgat.launcher.slurm_params import without_gpu

    given: dict[str, Any] = {
        f.name: getattr(args, f"osc_{f.name}")
        for f in dataclasses.fields(OscConfig)
        if getattr(args, f"osc_{f.name}") is not None
    }
    if given.get("gpus_per_node"):
        raise ConfigError(
            f"--osc-config.gpus-per-node {given['gpus_per_node']}: transfer evaluations score on the "
            f"CPU, so the GPU would sit idle, billed. Drop the flag (they ask for none)."
        )
    if "setup" in given:
        given["setup"] = tuple(given["setup"])
    return without_gpu(dataclasses.replace(first_run.osc_config, **given))


def _tasks(plan: list[Evaluation]) -> list[Any]:
    from kdgat.launcher.eval_job import EvalJob

    def text(p: Path | None) -> str | None:
        return None if p is None else str(p)

    return [
        EvalJob(
            str(e.run),
            e.name,
            str(e.target),
            e.dataset,
            text(e.calibration),
            e.calibration_seconds,
            dict(e.thresholds),
        )
        for e in plan
    ]


def main(argv: list[str]) -> int:
    the_parser = parser()
    # argparse keeps only the last of a repeated flag: list flags add up, other repeats are refused.
    args = the_parser.parse_args(merge_repeats(argv, flag_table(the_parser)))
    if args.parallelism < 1:
        raise ConfigError(f"--parallelism {args.parallelism}: expected an integer >= 1 (tasks at once).")
    plan = evaluations(args)
    first = finished(args.runs[0])
    for run in args.runs[1:]:
        finished(run)
    from kdgat.launcher import slurm_params, submit

    osc = osc_config(args, first)
    params = slurm_params.slurm_parameters(
        osc, args.job_name, extra_sbatch(tuple(args.sbatch)), args.parallelism, submit.setup_lines()
    )
    folder = submit.job_folder(args.runs_root)
    print(f"{len(plan)} evaluation(s) in 1 job:")
    for i, e in enumerate(plan):
        print(f"    [{i}] {e.describe()}")
    if args.dry_run:
        from kdgat.launcher.printing import print_dry_run

        print_dry_run([("transfer", submit.script_text(params, folder, len(plan)))])
        return 0
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(submit.REPO), os.environ.get("PYTHONPATH")) if p
    )
    failed = _run(args, params, folder, plan, osc)
    if failed is None:  # submitted without waiting
        return 0
    return _matrix(args, plan, failed)


def _run(
    args: argparse.Namespace, params: dict[str, Any], folder: Path, plan: list[Evaluation], osc: OscConfig
) -> list[int] | None:
    """Run or submit the tasks; the indices of the tasks that failed, or None if not waited for."""
    if args.executor == "slurm":
        return _submit_slurm(args, params, folder, plan, osc)
    import submitit

    tasks = _tasks(plan)
    ex = submitit.LocalExecutor(folder) if args.executor == "local" else submitit.DebugExecutor(folder)
    if args.executor == "local":
        ex.update_parameters(timeout_min=osc.time_min)
    failed = []
    for start in range(0, len(tasks), args.parallelism):  # LocalExecutor ignores array caps
        wave = ex.submit_array(tasks[start : start + args.parallelism])
        for i, job in enumerate(wave, start):
            try:
                print(f"[transfer {i}] wrote {job.result()}", flush=True)
            except Exception as err:  # a failed task is reported, the others go on
                failed.append(i)
                why = str(err).strip().splitlines()[-1]
                print(f"[transfer {i}] {plan[i].describe()} failed: {why}", file=sys.stderr)
    return failed


def _submit_slurm(
    args: argparse.Namespace, params: dict[str, Any], folder: Path, plan: list[Evaluation], osc: OscConfig
) -> list[int] | None:
    import submitit

    from kdgat.launcher import slurm_params, submit

    slurm_params.check_partition_exists(osc)
    ex = submitit.SlurmExecutor(folder)
    ex.update_parameters(**params)
    try:
        jobs = ex.submit_array(_tasks(plan))
    except submitit.core.utils.FailedJobError as err:
        raise ConfigError(
            f"sbatch refused the job: {str(err).strip()}. Fix the parameter and launch again."
        ) from None
    job_id = jobs[0].job_id.split("_")[0]
    submit.log_launch(args.runs_root, "transfer", job_id, [LOG_PRESET], jobs)
    logs = jobs[0].paths.stdout.parent
    print(f"submitted transfer: Slurm job {job_id} ({len(jobs)} task(s)), logs {logs}")
    if not args.wait:
        runs = " ".join(dict.fromkeys(str(e.run) for e in plan))
        print(f"follow with: python launch.py status --runs-root {args.runs_root}")
        print(
            f"then the matrix: python -m kdgat.results {runs} --transfer --transfer-rows run --png {args.png}"
        )
        return None
    states = submit.wait_for_jobs([job_id])
    # One task: the job id itself; an array: job_task rows.
    state_of = {k.rpartition("_")[2] if "_" in k else "0": v for k, v in states.items()}
    failed = [i for i in range(len(plan)) if state_of.get(str(i)) != "COMPLETED"]
    for i in failed:
        state = state_of.get(str(i), "?")
        print(f"[transfer {i}] {plan[i].describe()}: {state}, log {jobs[i].paths.stderr}", file=sys.stderr)
    return failed


def _matrix(args: argparse.Namespace, plan: list[Evaluation], failed: list[int]) -> int:
    """Print the matrix from the eval files the tasks wrote and save the heatmap."""
    print(f"{len(plan) - len(failed)} of {len(plan)} evaluation(s) finished")
    if failed:
        return EXIT_JOBS_FAILED
    from kdgat.results.analyse import matrices_of
    from kdgat.results.render import render_matrices

    runs = list(dict.fromkeys(e.run for e in plan))
    names = list(dict.fromkeys(e.name for e in plan))
    print(render_matrices(matrices_of(runs, names, args.png), args.format, 4))
    print(f"heatmap: {args.png}")
    return 0
