"""launch.py's pieces: grids of configs, OSC/Slurm parameters, the job callable, submission, status.

Data flows one way: launch.py -> grid/pipeline (configs) -> slurm_params -> submit (submitit) ->
job (the same `run_experiment` as `python train.py`) -> run dirs -> status.
"""
