"""runs: run directories on disk, torch-free (the launcher plans, claims and submits with them).

prerequisites.py is the stage graph (what each stage builds on); store.py is the run directory
itself (paths, claiming, status.json, the `Run` type); upstream.py binds a run to the finished runs
it builds on. store reads prerequisites, never the other way round.
"""
