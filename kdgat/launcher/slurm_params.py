"""osc_config -> submitit Slurm parameters, with OSC cluster presets and checks before submission.

OSC cluster facts below are from OSC's public cluster pages (osc.edu/resources/technical_support/
supercomputers/{pitzer,ascend,cardinal}, "Batch Limit Rules" and "Partitions" pages) as read in
2024-2025. They change; where a number is an assumption it says so. Override any check with
--osc-config.cluster unset (no cluster checks) if OSC changes a limit before this table does.
"""

import dataclasses
import re
import shutil
import subprocess
from typing import Any

from configs import ConfigError, OscConfig


@dataclasses.dataclass(frozen=True)
class Partition:
    max_gpus_per_node: int
    max_time_min: int
    cores_per_node: int
    mem_gb_per_node: int


@dataclasses.dataclass(frozen=True)
class Cluster:
    name: str
    default_cpu_partition: str
    default_gpu_partition: str
    partitions: dict[str, Partition]
    note: str


HOURS = 60
# Pitzer: 2x V100 (16/32 GB) GPU nodes with 40/48 cores, 4x V100 quad nodes (gpu-quad).
# Ascend: A100 nodes; 'quad' = 4x A100 80 GB / 88 usable cores, 'nextgen' = 2x A100 40 GB /
# 120 cores (assumption: the 2024 "next gen" Ascend expansion).
# Cardinal: H100 nodes, 4x H100 94 GB, 96 cores, ~1 TB memory; CPU nodes 96 cores / 512 GB.
# Memory figures are the usable per-node amounts OSC documents, rounded down (assumption).
CLUSTERS: dict[str, Cluster] = {
    "pitzer": Cluster(
        "pitzer",
        "cpu",
        "gpu",
        {
            "cpu": Partition(0, 168 * HOURS, 48, 178),
            "gpu": Partition(2, 168 * HOURS, 48, 363),
            "gpu-quad": Partition(4, 168 * HOURS, 48, 744),
            "debug": Partition(0, 1 * HOURS, 48, 178),
            "gpudebug": Partition(2, 1 * HOURS, 48, 363),
            "largemem": Partition(0, 168 * HOURS, 80, 744),
            "hugemem": Partition(0, 168 * HOURS, 80, 2989),
        },
        "V100 GPUs; gpu partition 2 per node, gpu-quad 4 per node",
    ),
    "ascend": Cluster(
        "ascend",
        "cpu",
        "nextgen",
        {
            "cpu": Partition(0, 168 * HOURS, 120, 471),
            "nextgen": Partition(2, 168 * HOURS, 120, 471),
            "quad": Partition(4, 168 * HOURS, 88, 921),
            "debug-nextgen": Partition(2, 1 * HOURS, 120, 471),
            "debug-quad": Partition(4, 1 * HOURS, 88, 921),
        },
        "A100 GPUs; nextgen 2 per node, quad 4 per node",
    ),
    "cardinal": Cluster(
        "cardinal",
        "cpu",
        "gpu",
        {
            "cpu": Partition(0, 168 * HOURS, 96, 478),
            "gpu": Partition(4, 168 * HOURS, 96, 952),
            "debug": Partition(0, 1 * HOURS, 96, 478),
            "gpudebug": Partition(4, 1 * HOURS, 96, 952),
            "hugemem": Partition(0, 168 * HOURS, 96, 1982),
        },
        "H100 GPUs, 4 per node",
    ),
}
MAIL_TYPES = {
    "NONE",
    "BEGIN",
    "END",
    "FAIL",
    "REQUEUE",
    "ALL",
    "INVALID_DEPEND",
    "STAGE_OUT",
    "TIME_LIMIT",
    "TIME_LIMIT_90",
    "TIME_LIMIT_80",
    "TIME_LIMIT_50",
    "ARRAY_TASKS",
}
OSC_ACCOUNT = re.compile(r"^P[A-Z]{2,3}\d{4}$")  # OSC project codes: PAS1234, PZS0710, ...
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def with_cluster_defaults(osc: OscConfig) -> OscConfig:
    """Fill the partition from the cluster preset when only --osc-config.cluster is given."""
    if osc.cluster is None or osc.partition is not None:
        return osc
    cluster = _cluster(osc)
    partition = cluster.default_gpu_partition if osc.gpus_per_node else cluster.default_cpu_partition
    return dataclasses.replace(osc, partition=partition)


def _cluster(osc: OscConfig) -> Cluster:
    name = (osc.cluster or "").lower()
    if name not in CLUSTERS:
        raise ConfigError(
            f"--osc-config.cluster {osc.cluster!r} is not an OSC cluster this launcher knows: it "
            f"picks partitions and checks limits per cluster. Use one of {', '.join(CLUSTERS)}, "
            f"or leave it unset for a non-OSC Slurm (no cluster checks)."
        )
    return CLUSTERS[name]


def check(osc: OscConfig) -> None:
    """Refuse parameters Slurm would reject or OSC cannot schedule, before anything is submitted."""
    if osc.mail_type is not None:
        bad = [t for t in osc.mail_type.split(",") if t.strip().upper() not in MAIL_TYPES]
        if bad:
            raise ConfigError(
                f"--osc-config.mail-type {osc.mail_type!r}: {', '.join(bad)} is not a Slurm mail "
                f"type. Use a comma list of {', '.join(sorted(MAIL_TYPES))}."
            )
    if osc.mail_user is not None and not EMAIL.match(osc.mail_user):
        raise ConfigError(
            f"--osc-config.mail-user {osc.mail_user!r} is not an e-mail address; Slurm would "
            f"mail nobody. Give name@example.edu."
        )
    if osc.mail_type and not osc.mail_user:
        raise ConfigError(
            "--osc-config.mail-type is set without --osc-config.mail-user: Slurm would mail the "
            "submitting user's local account. Add --osc-config.mail-user name@example.edu."
        )
    if osc.cluster is None:
        return
    cluster = _cluster(osc)
    if osc.account is None or not OSC_ACCOUNT.match(osc.account):
        raise ConfigError(
            f"--osc-config.account {osc.account!r}: OSC charges every job to a project code like "
            f"PAS1234, and sbatch refuses jobs without a valid one. Pass --osc-config.account "
            f"P<letters><4 digits> (see `OSCusage` or my.osc.edu for yours)."
        )
    osc = with_cluster_defaults(osc)
    part = cluster.partitions.get(osc.partition or "")
    if part is None:
        raise ConfigError(
            f"--osc-config.partition {osc.partition!r} is not a partition of {cluster.name}. "
            f"Partitions there: {', '.join(cluster.partitions)}."
        )
    limits = [
        ("gpus-per-node", osc.gpus_per_node, part.max_gpus_per_node, "GPUs per node"),
        ("time-min", osc.time_min, part.max_time_min, "minutes of wall time"),
        ("cpus-per-task", osc.cpus_per_task, part.cores_per_node, "cores per node"),
        ("mem-gb", osc.mem_gb, part.mem_gb_per_node, "GiB of memory per node"),
    ]
    for flag, value, limit, what in limits:
        if value > limit:
            fits = [n for n, p in cluster.partitions.items() if getattr(p, _field(flag)) >= value]
            raise ConfigError(
                f"--osc-config.{flag} {value} exceeds partition {osc.partition!r} on "
                f"{cluster.name}, which offers at most {limit} {what} ({cluster.note}). "
                f"Lower it to <= {limit}"
                + (f", or use --osc-config.partition {' / '.join(fits)}." if fits else ".")
            )
    if osc.gpus_per_node and part.max_gpus_per_node == 0:
        raise ConfigError(
            f"--osc-config.gpus-per-node {osc.gpus_per_node} on CPU partition {osc.partition!r}: "
            f"it has no GPUs. Use --osc-config.partition {cluster.default_gpu_partition}."
        )


def without_gpu(osc: OscConfig) -> OscConfig:
    """The request of a job that uses no GPU: none asked for, and on a known OSC cluster its CPU
    partition in place of a GPU one (a GPU partition bills and queues for GPUs)."""
    partition = osc.partition
    if osc.cluster is not None and partition is not None:
        part = _cluster(osc).partitions.get(partition)
        if part is not None and part.max_gpus_per_node > 0:
            partition = None  # with_cluster_defaults picks the cluster's CPU partition
    return dataclasses.replace(osc, gpus_per_node=0, partition=partition)


def check_gpu_use(osc: OscConfig, runs_per_task: int, cuda_jobs: list[str]) -> None:
    """Refuse a GPU request that no run can use, or runs that need a GPU no task gets.
    `cuda_jobs`: the jobs whose runs ask for --device cuda or --training.amp fp16 (CUDA only)."""
    if cuda_jobs and not osc.gpus_per_node:
        raise ConfigError(
            f"--device cuda (or --training.amp fp16, which needs CUDA) asks every run of job(s) "
            f"{', '.join(cuda_jobs)} for a GPU, but --osc-config.gpus-per-node is 0, so Slurm gives "
            f"their tasks none and each would fail at start (torch sees no CUDA device). Add "
            f"--osc-config.gpus-per-node 1, or use --device auto with --training.amp auto (the CPU, in "
            f"fp32, where there is no GPU)."
        )
    if osc.gpus_per_node > runs_per_task:
        idle = osc.gpus_per_node - runs_per_task
        raise ConfigError(
            f"--osc-config.gpus-per-node {osc.gpus_per_node} bills {osc.gpus_per_node} GPUs per task, "
            f"but a run uses one GPU and each task holds {runs_per_task} run(s): {idle} GPU(s) per task "
            f"would sit idle, billed. Use --osc-config.gpus-per-node {runs_per_task}"
            + (" (or pack runs onto the GPUs with --runs-per-task K)." if runs_per_task == 1 else ".")
        )


def check_partition_exists(osc: OscConfig) -> None:
    """On the Slurm at hand, refuse a partition `sinfo` does not list (before submitting)."""
    osc = with_cluster_defaults(osc)
    if osc.partition is None or shutil.which("sinfo") is None:
        return
    out = subprocess.run(["sinfo", "-h", "-o", "%R"], capture_output=True, text=True, timeout=60)
    partitions = set(out.stdout.split())
    if out.returncode == 0 and partitions and osc.partition not in partitions:
        raise ConfigError(
            f"--osc-config.partition {osc.partition!r} does not exist on this Slurm cluster, so "
            f"sbatch would refuse every job. Partitions here (sinfo): {', '.join(sorted(partitions))}."
        )


def _field(flag: str) -> str:
    return {
        "gpus-per-node": "max_gpus_per_node",
        "time-min": "max_time_min",
        "cpus-per-task": "cores_per_node",
        "mem-gb": "mem_gb_per_node",
    }[flag]


def slurm_parameters(
    osc: OscConfig, name: str, extra: dict[str, str], parallelism: int, setup: list[str]
) -> dict[str, Any]:
    """SlurmExecutor.update_parameters(**this). `extra` are further sbatch options (--sbatch)."""
    check(osc)
    osc = with_cluster_defaults(osc)
    params: dict[str, Any] = {
        "job_name": name,
        "time": osc.time_min,
        "mem": f"{osc.mem_gb}GB",
        "cpus_per_task": osc.cpus_per_task,
        "array_parallelism": parallelism,
        "setup": [*setup, *osc.setup],
        "additional_parameters": {"kill-on-invalid-dep": "yes", **extra},
    }
    if osc.gpus_per_node:
        params["gpus_per_node"] = osc.gpus_per_node
    optional = {
        "partition": osc.partition,
        "account": osc.account,
        "qos": osc.qos,
        "constraint": osc.constraint,
        "mail_type": osc.mail_type,
        "mail_user": osc.mail_user,
    }
    params |= {k: v for k, v in optional.items() if v is not None}
    return params
