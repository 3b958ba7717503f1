"""Exported artefacts: one self-contained file per run (ONNX or TorchScript), and the scorer
that runs one, or a run directory directly, on one window graph at a time.

An artefact carries everything a detector needs beside the frames, as JSON ("kdgat" metadata:
ONNX metadata_props, or TorchScript's extra file kdgat.json): the CAN-ID vocabulary, the
normalisation (also inside the model), the threshold, the node and edge feature names, window
and stride, the source run and its config digest. The model takes one raw window graph (see
kdgat/deploy/plain.py) and returns its score and per-node scores.
"""

import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kdgat.data.registry import MODALITIES
from kdgat.deploy.plain import ExportedGraphModel
from kdgat.errors import UserError
from kdgat.io import atomic_write_bytes
from kdgat.models import count_parameters
from kdgat.runs.store import Run, resolve_recorded

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
META_KEY = "kdgat"
ARTEFACT_VERSION = 1
ONNX_OPSET = 18

DQN_NOTE = (
    "DQN fusion runs do not export yet: the agent decides per window from a state of VGAE and GAT "
    "statistics (kdgat/stages/fusion.py fusion_inputs), so an export needs the VGAE and GAT runs "
    "exported into the same graph, the state features written in plain torch, the StateScaler and "
    "the Q-network's greedy alpha. Export the fusion GAT or the GAT run instead."
)


def _open_run(run_dir: Path) -> Run:
    run = Run.open(run_dir)
    if not run.finished:
        raise UserError(
            f"{run_dir} is not a finished run (state={run.state}); export a run whose training finished."
        )
    if run.config.model_architecture == "DQN":
        raise UserError(f"{run_dir}: {DQN_NOTE}")
    if run.config.modality != "automotive":
        raise UserError(
            f"{run_dir} is a {run.config.modality} run; export and streaming detection cover CAN "
            f"(automotive) runs, whose window graphs the detector builds from frames."
        )
    features = run.config.dataset_config.automotive.features
    if features != "default":
        raise UserError(
            f"{run_dir} was trained on --dataset-config.automotive.features {features}; the streaming "
            f"detector's incremental builder computes the default feature set only. Export a run "
            f"trained with the default features (the agnostic set would need its own incremental builder)."
        )
    return run


def exported_module(run: Run) -> ExportedGraphModel:
    """The run's scoring path in plain torch (kdgat.deploy.plain), in eval mode."""
    cfg = run.config
    vgae, weights_cfg = None, cfg
    if cfg.learning_type == "fusion":
        upstream = Run(resolve_recorded(run.metrics["upstream"]["vgae_run"], run.path))
        vgae, weights_cfg = upstream.model, upstream.config
    v = weights_cfg.learning_config.vgae
    module = ExportedGraphModel(
        run.model,
        run.normalisation,
        vgae=vgae,
        vgae_weights=(v.feature_weight, v.id_weight, v.neighbour_weight),
        score_pooling=cfg.learning_config.vgae.score_pooling,
    )
    return module.eval()


def artefact_meta(run: Run, fmt: str) -> dict[str, Any]:
    cfg = run.config
    modality = MODALITIES[cfg.modality]
    a = cfg.dataset_config.automotive
    params = count_parameters(run.model)
    if cfg.learning_type == "fusion":
        params += count_parameters(Run(resolve_recorded(run.metrics["upstream"]["vgae_run"], run.path)).model)
    return {
        "artefact_version": ARTEFACT_VERSION,
        "format": fmt,
        "source_run": str(run.path),
        "config_digest": run.config_digest,
        "preset": run.status.get("preset"),
        "modality": cfg.modality,
        "dataset": cfg.dataset,
        "learning_type": cfg.learning_type,
        "model_architecture": cfg.model_architecture,
        "model_size": cfg.model_size,
        "parameters": params,
        "score": "vgae_anomaly_score" if cfg.model_architecture == "VGAE" else "attack_probability",
        "node_scores": cfg.model_architecture == "VGAE" or cfg.learning_type == "fusion",
        "threshold": float(run.metrics["threshold"]),
        "window": a.window,
        "stride": a.stride,
        "feature_set": "default",
        "node_features": [*modality.node_features],
        "edge_features": [*modality.edge_features],
        "vocabulary": {str(k): v for k, v in sorted(run.vocabulary.items())},
        "normalisation": run.normalisation,
        "inputs": {
            "x": "(N, F) float32 raw node features",
            "node_id": "(N,) int64 vocabulary index, 0 = unknown",
            "edge_index": "(2, E) int64 local node indices",
            "edge_attr": "(E, F_e) float32 raw edge features",
        },
        "outputs": {"score": "(1,) float32", "node_score": "(N,) float32"},
    }


def example_graph(meta: dict[str, Any]) -> tuple[torch.Tensor, ...]:
    """A small valid window graph (shape example for tracing): 3 nodes, 4 edges, one a loop."""
    x = torch.rand(3, len(meta["node_features"]))
    node_id = torch.tensor([0, 1, 1])
    edge_index = torch.tensor([[0, 1, 2, 2], [1, 2, 0, 2]])
    edge_attr = torch.rand(4, len(meta["edge_features"]))
    return x, node_id, edge_index, edge_attr


def _onnx_bytes(module: torch.nn.Module, example: tuple[torch.Tensor, ...], meta: dict[str, Any]) -> bytes:
    import onnx

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation chatter; errors still raise
        torch.onnx.export(
            module,
            example,
            buffer,
            input_names=["x", "node_id", "edge_index", "edge_attr"],
            output_names=["score", "node_score"],
            dynamic_axes={"x": {0: "N"}, "node_id": {0: "N"}, "edge_index": {1: "E"}, "edge_attr": {0: "E"}},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(meta)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def _torchscript_bytes(
    module: torch.nn.Module, example: tuple[torch.Tensor, ...], meta: dict[str, Any]
) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export
        traced = torch.jit.trace(module, example, check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={"kdgat.json": json.dumps(meta)})
    return buffer.getvalue()


def export_run(run_dir: Path, fmt: str, out: Path | None = None) -> Path:
    """Write run_dir's artefact (default RUN_DIR/export/model.onnx or model.pt); returns its path."""
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    run = _open_run(Path(run_dir))
    module = exported_module(run)
    meta = artefact_meta(run, fmt)
    example = example_graph(meta)
    with torch.no_grad():
        data = (_onnx_bytes if fmt == "onnx" else _torchscript_bytes)(module, example, meta)
    target = Path(out) if out is not None else run.path / "export" / f"model{FORMATS[fmt]}"
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, data)
    return target


class Scorer:
    """Scores one raw window graph (numpy arrays) with an artefact or a run's plain-torch module.

    backend: 'onnx' (ONNX Runtime), 'torchscript' or 'torch' (eager, straight from a run dir).
    """

    def __init__(self, backend: str, meta: dict[str, Any], runner: Any) -> None:
        self.backend, self.meta, self._runner = backend, meta, runner
        self.threshold = float(meta["threshold"])
        self.vocabulary = {int(k): v for k, v in meta["vocabulary"].items()}

    def __call__(
        self, x: np.ndarray, node_id: np.ndarray, edge_index: np.ndarray, edge_attr: np.ndarray
    ) -> tuple[float, np.ndarray]:
        if self.backend == "onnx":
            score, node_score = self._runner.run(
                None, {"x": x, "node_id": node_id, "edge_index": edge_index, "edge_attr": edge_attr}
            )
            return float(score[0]), node_score
        with torch.no_grad():
            score, node_score = self._runner(
                torch.from_numpy(x),
                torch.from_numpy(node_id),
                torch.from_numpy(edge_index),
                torch.from_numpy(edge_attr),
            )
        return float(score[0]), node_score.numpy()


def load_scorer(path: Path, threads: int = 1) -> Scorer:
    """A Scorer for an artefact file (.onnx, .pt) or a finished run directory."""
    path = Path(path)
    if path.is_dir():
        run = _open_run(path)
        torch.set_num_threads(threads)
        return Scorer("torch", artefact_meta(run, "torch"), exported_module(run))
    if not path.is_file():
        raise UserError(f"{path} is neither a run directory nor an artefact file (.onnx, .pt).")
    if path.suffix == ".onnx":
        import onnx
        import onnxruntime

        proto = onnx.load(str(path), load_external_data=False)
        found = {p.key: p.value for p in proto.metadata_props}
        if META_KEY not in found:
            raise UserError(
                f"{path} is an ONNX model without kdgat metadata; export it with python -m kdgat.export."
            )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        return Scorer("onnx", json.loads(found[META_KEY]), session)
    if path.suffix == ".pt":
        extra = {"kdgat.json": ""}
        torch.set_num_threads(threads)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = torch.jit.load(str(path), _extra_files=extra)
        if not extra["kdgat.json"]:
            raise UserError(
                f"{path} is a TorchScript file without kdgat metadata; export it with python -m kdgat.export."
            )
        return Scorer("torchscript", json.loads(extra["kdgat.json"]), module.eval())
    raise UserError(f"{path}: unknown artefact type {path.suffix!r}; expected .onnx or .pt (TorchScript).")
