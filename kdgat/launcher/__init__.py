"""launch.py's pieces: its flags, grids of configs, the plan, OSC/Slurm parameters, the job callable,
submission, what it prints, status.

Data flows one way: launch.py (parse) -> args -> build (grid/pipeline -> plan) -> command ->
slurm_params -> submit (submitit) -> job (the same `run_experiment` as `python train.py`) -> run
dirs -> status. printing holds every line launch.py prints about a plan and its jobs.
"""
