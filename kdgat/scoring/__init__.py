"""scoring: a finished run scored on other data (another dataset, a folder or one capture file).

finished.py loads a finished run as score functions (graphs -> decision inputs, for any kind of
run: GAT, VGAE, fusion GAT, DQN fusion); target.py builds a target's graphs as in training (or
fitted to a calibration capture) and scores them; evaluate.py turns those scores into the
RUN/eval_<name>.json that `python -m kdgat.evaluate`, `python -m kdgat.transfer` and the
launcher's transfer tasks write.

It sits above the stages (it rebuilds their models and reuses their fusion inputs) and below
the commands; kdgat.evaluation, below the training loop, keeps only metrics and reports.
"""
