"""deploy: a finished CAN run as a detector on the edge.

artefact.py exports a run (ONNX or TorchScript, one self-contained file) and scores one window
graph with it; plain.py is the models in plain torch for one graph (what is exported);
stream.py keeps the window graph of arriving frames up to date and scores it at the stride
(`python -m kdgat.detect`); report.py measures what a detector costs on one core
(`python -m kdgat.export --report`).
"""
