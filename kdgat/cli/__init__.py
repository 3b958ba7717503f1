"""cli: the commands besides train.py and launch.py, one module each with `main(argv=None) -> int`.

    evaluate   a finished run scored on other data        python -m kdgat.evaluate   (kdgat-evaluate)
    transfer   trained-on x evaluated-on matrix           python -m kdgat.transfer   (kdgat-transfer)
    export     a run as a detector artefact; --report     python -m kdgat.export     (kdgat-export)
    detect     streaming detection on a replay or a bus   python -m kdgat.detect     (kdgat-detect)
    results    every run below a folder as one table      python -m kdgat.results    (kdgat-results)

Each module parses its arguments and runs the command's steps; the work itself lives in the
library packages (kdgat.scoring, kdgat.deploy, kdgat.results). A mistake the user can fix exits 2
with one line on stderr. The `python -m` names are thin modules at the package root (and
kdgat/results/__main__.py) that call these, so existing scripts and Slurm jobs keep working; the
console scripts in pyproject.toml name the same functions.

Nothing in kdgat imports this package except those shims and the launcher (launch.py transfer
shares the transfer command's arguments); it must stay light to import: the transfer command is
parsed on login nodes without torch.
"""
