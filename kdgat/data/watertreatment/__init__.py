"""The watertreatment modality: BATADAL (C-Town water distribution network), hourly SCADA logs.

Pieces (each pure and tested on its own; the data layer and registry plug them in):
- batadal.py: strict, vectorised reader of the five BATADAL CSVs -> ProcessLog (43 sensor columns
  in a canonical order, label 1/0/-1, attack ids from the attack_ids twin or numbered runs).
- epanet.py: strict parser of the EPANET 2 .inp sections the process graph needs -> Network
  (written instead of depending on wntr; the module says why).
- process_graph.py: the process graph of the monitored elements -> ProcessGraph. Edges: hydraulic
  paths through no other monitored element, pump/valve end junctions, level controls tank -> link;
  or correlations learned on benign training hours (plants without a model).
- graphs.py: sliding windows of W hours -> flat graph arrays (the cache format), one graph per
  labelled decided hour (a window decides its last hour, as the competition does).
- modality.py: the plug-in the registry lists (readers, builder and cache key wired together).
  The competition's S = gamma S_TTD + (1 - gamma) S_CM (Taormina et al. 2018) is scoring, not data:
  kdgat/evaluation/batadal.py.
- plant.py, synthetic.py: a seeded synthetic plant (a miniature C-Town with level controls,
  spoofing, actuator and replay attacks), written in the real folder layout (offline default).

Defaults the registry is expected to use (issue 11): BATADAL_dataset03 for training,
BATADAL_dataset04_fully_labelled (attacks 1-7) for validation, BATADAL_test_dataset_labelled with
its BATADAL_test_dataset_attack_ids twin (attacks 8-14) for test; the process graph from
c-town.inp.gz beside them.
"""
