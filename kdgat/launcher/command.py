"""What `python launch.py` does once its flags are parsed: plan, print, then submit (or stop at
--dry-run). Returns the exit code; ConfigError/UserError go back to launch.py, which reports them."""

import os

from configs import ConfigError
from kdgat.launcher.args import LaunchArgs
from kdgat.launcher.build import build_plan
from kdgat.launcher.memory import check_memory
from kdgat.launcher.printing import print_dry_run, print_ran_here, print_runs, print_states, print_submitted
from kdgat.launcher.requests import job_parameters, job_requests

EXIT_JOBS_FAILED = 1


def launch(args: LaunchArgs) -> int:
    # submitit and the Slurm pieces load here, after parsing: --help and bad flags stay quick.
    import submitit

    from kdgat.launcher import records, slurm_params, submit

    the_plan = build_plan(args)
    units = the_plan.units
    for unit in units:
        unit.runs_per_task = args.runs_per_task
        unit.gpu_bytes_per_run = int(args.gpu_gb_per_run * 2**30) or None
    osc_all = {repr(c.osc_config) for u in units for c in u.cfgs}
    if len(osc_all) > 1:
        raise ConfigError(
            "--set over osc_config fields gives tasks different Slurm resources, but one array "
            "job has one set of resources. Launch those separately."
        )
    osc = units[0].cfgs[0].osc_config
    runs_root = args.experiment.runs_root
    folder = submit.job_folder(runs_root)
    requests, notes = job_requests(the_plan, osc, args)  # each job asks for what its runs use
    # Refused before anything is submitted when a job asks for less memory than its runs need.
    notes += check_memory(units, requests, args.runs_per_task, args.executor)
    params = job_parameters(requests, args, submit.setup_lines())
    print_runs(the_plan)
    for note in notes:
        print(note)
    if args.dry_run:
        print_dry_run(submit.dry_run(params, folder, units))
        return 0
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(submit.REPO), os.environ.get("PYTHONPATH")) if p
    )
    how = {
        "executor": args.executor,
        "parallelism": args.parallelism,
        "timeout_min": osc.time_min,
        "runs_per_task": args.runs_per_task,
        "gpu_bytes_per_run": units[0].gpu_bytes_per_run,
    }
    if args.executor != "slurm":
        record = records.new_record(runs_root, args.job_name, how)
        print(f"launch recorded in {record}")
        outcomes = submit.run_here(args.executor, folder, the_plan, args.parallelism, osc.time_min, record)
        return EXIT_JOBS_FAILED if print_ran_here(outcomes) else 0
    for request in {repr(r): r for r in requests.values()}.values():
        slurm_params.check_partition_exists(request)
    record = records.new_record(runs_root, args.job_name, how)
    print(f"launch recorded in {record}")
    try:
        outcomes = submit.submit_slurm(params, folder, the_plan, runs_root, record)
    except submitit.core.utils.FailedJobError as err:
        raise ConfigError(
            f"sbatch refused the job: {str(err).strip()}. Jobs submitted before it (see "
            f"{runs_root}/launches.jsonl) stay queued; fix the parameter and launch again."
        ) from None
    print_submitted(outcomes, runs_root)
    if not args.wait:
        return 0
    states = submit.wait_slurm(outcomes)
    print_states(states)
    return 0 if all(s == "COMPLETED" for s in states.values()) else EXIT_JOBS_FAILED
