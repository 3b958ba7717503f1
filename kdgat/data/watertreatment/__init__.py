"""The watertreatment modality: BATADAL (C-Town water distribution network), hourly SCADA logs.

Pieces (each pure, tested on its own; the data layer and registry plug them in):
- batadal.py: strict, vectorised reader of the five BATADAL CSVs -> ProcessLog.
- epanet.py: strict parser of the EPANET 2 .inp sections the process graph needs -> Network.
- process_graph.py: the process graph of the monitored elements (hydraulic paths, pump/valve end
  junctions, level controls; or correlations learned on benign training hours) -> ProcessGraph.
- windows.py: sliding windows of W hours -> flat graph arrays (the cache format), one graph per
  decided hour (a window decides its last hour, as the competition does).
- scoring.py: the competition's score S = gamma S_TTD + (1 - gamma) S_CM (Taormina et al. 2018).
- synthetic.py: a seeded synthetic plant in the real folder layout (offline default).
"""
