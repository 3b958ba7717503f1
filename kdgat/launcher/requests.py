"""Each job's Slurm request matches what its runs use.

One --osc-config for a whole launch would hold a GPU in every stage. A job whose runs train on the
CPU asks for none: the DQN stage (its agent is an MLP over ~11 numbers per window and trains on
the CPU whatever --device says; the frozen GAT and VGAE it reads are scored once, on the CPU
too) and any job whose runs all use --device cpu. Such a job's runs are given --device cpu when
they asked for cuda (they could not start without a GPU), and a known OSC cluster's GPU partition
becomes its CPU one. Refused before anything is submitted: runs asking for cuda in a job
without a GPU, and more GPUs per task than the runs of a task can use (a run uses one GPU).
Transfer evaluations score on the CPU and ask for no GPU either (kdgat.launcher.transfer).
"""

import dataclasses
from collections.abc import Callable
from typing import Any

from configs import ExperimentConfig, OscConfig
from kdgat.launcher.args import LaunchArgs, extra_sbatch
from kdgat.launcher.plan import Plan, Unit
from kdgat.launcher.slurm_params import check, check_gpu_use, slurm_parameters, without_gpu

# Architectures whose runs train on the CPU whatever --device says (kdgat/stages/dqn_agent.py).
CPU_ARCHITECTURES = ("DQN",)


def uses_gpu(cfg: ExperimentConfig) -> bool:
    """Whether a run can use a GPU it is given."""
    return cfg.device != "cpu" and cfg.model_architecture not in CPU_ARCHITECTURES


def _on_cpu(plan: Plan, unit: Unit) -> bool:
    """Give the runs of a job without a GPU --device cpu where they asked for cuda; whether any changed."""
    changed = False
    for position, index in enumerate(unit.indices):
        run = plan.runs[index]
        if run.cfg.device == "cuda":
            run.cfg = dataclasses.replace(run.cfg, device="cpu")
            unit.cfgs[position] = run.cfg
            changed = True
    return changed


def job_requests(plan: Plan, osc: OscConfig, args: LaunchArgs) -> tuple[dict[str, OscConfig], list[str]]:
    """Each job's osc_config and a line for each job that asks for less than --osc-config says.
    Refuses GPU requests that cannot be used (slurm_params.check_gpu_use). Slurm only: the local
    executors request nothing, so their runs keep their configs."""
    if args.executor != "slurm":
        return {unit.name: osc for unit in plan.units}, []
    requests, notes = {}, []
    cuda_jobs = []
    for unit in plan.units:
        if any(uses_gpu(cfg) for cfg in unit.cfgs):
            requests[unit.name] = osc
            needs_cuda = any(c.device == "cuda" or c.training_config.amp == "fp16" for c in unit.cfgs)
            cuda_jobs += [unit.name] if needs_cuda else []
            continue
        requests[unit.name] = without_gpu(osc)
        if _on_cpu(plan, unit):
            notes.append(f"job {unit.name}: no GPU requested (its runs train on the CPU); --device cpu")
        elif osc.gpus_per_node:
            notes.append(f"job {unit.name}: no GPU requested (its runs train on the CPU)")
    check(osc)  # what the partition offers first: its limit says more than 'a GPU would sit idle'
    check_gpu_use(osc, args.runs_per_task, cuda_jobs)
    return requests, notes


def job_parameters(
    requests: dict[str, OscConfig], args: LaunchArgs, setup: list[str]
) -> Callable[[Unit], dict[str, Any]]:
    """submitit's Slurm parameters of each job (unit), every request checked now."""
    extra = extra_sbatch(args.sbatch)
    by_unit = {
        name: slurm_parameters(request, args.job_name, extra, args.parallelism, setup)
        for name, request in requests.items()
    }
    return lambda unit: by_unit[unit.name]
