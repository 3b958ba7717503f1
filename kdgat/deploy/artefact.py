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

from configs import ARCHITECTURES
from kdgat.common.errors import UserError
from kdgat.common.io import atomic_write_bytes
from kdgat.data.registry import MODALITIES
from kdgat.deploy.batched import BatchedGATModel
from kdgat.deploy.normalisation_swap import (
    calibrated_meta,
    calibration_knobs,
    onnx_normalisation,
    set_normalisation,
)
from kdgat.deploy.plain import ExportedGraphModel
from kdgat.models import count_parameters
from kdgat.models.gat import GATClassifier
from kdgat.runs.store import Run, resolve_recorded

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
META_KEY = "kdgat"
ARTEFACT_VERSION = 1
ONNX_OPSET = 18


def export_refusal(run_dir: Path, architecture: str) -> str | None:
    """Why a run of this architecture does not export (its row in configs.ARCHITECTURES), with what
    to export instead; None when it exports."""
    why = ARCHITECTURES[architecture].no_export
    if not why:
        return None
    exporting = [a for a, spec in ARCHITECTURES.items() if not spec.no_export]
    return (
        f"{run_dir} is a {architecture} run, and {architecture} runs do not export: {why}. Export a "
        f"{' or '.join(exporting)} run instead (a fusion GAT for fusion), or score this run with "
        f"`python -m kdgat.evaluate {run_dir} --data-root PATH`."
    )


def _open_run(run_dir: Path) -> Run:
    run = Run.open(run_dir)
    if not run.finished:
        raise UserError(
            f"{run_dir} is not a finished run (state={run.state}); export a run whose training finished."
        )
    refusal = export_refusal(run_dir, run.config.model_architecture)
    if refusal:
        raise UserError(refusal)
    if run.config.modality != "automotive":
        raise UserError(
            f"{run_dir} is a {run.config.modality} run; export and streaming detection cover CAN "
            f"(automotive) runs, whose window graphs the detector builds from frames."
        )
    features = run.config.dataset_config.automotive.features
    if features != "default":
        raise UserError(
            f"{run_dir} was trained on --dataset-config.automotive.features {features}; the streaming "
            f"detector's window builders compute the default feature set only. Export a run "
            f"trained with the default features (the agnostic set would need its own streaming builder)."
        )
    return run


def exported_module(run: Run, normalisation: dict[str, list[float]] | None = None) -> ExportedGraphModel:
    """The run's scoring path in plain torch (kdgat.deploy.plain), in eval mode; normalisation:
    another car's (a calibration's) instead of the run's."""
    cfg = run.config
    vgae, weights_cfg = None, cfg
    if cfg.learning_type == "fusion":
        upstream = Run(resolve_recorded(run.metrics["upstream"]["vgae_run"], run.path))
        vgae, weights_cfg = upstream.model, upstream.config
    v = weights_cfg.learning_config.vgae
    module = ExportedGraphModel(
        run.model,
        normalisation or run.normalisation,
        vgae=vgae,
        vgae_weights=(v.feature_weight, v.id_weight, v.neighbour_weight),
        score_pooling=cfg.learning_config.vgae.score_pooling,
    )
    return module.eval()


def batched_module(run: Run, normalisation: dict[str, list[float]] | None = None) -> BatchedGATModel | None:
    """The run's scoring path on a batch of graphs in one call (kdgat.deploy.batched), for GAT
    classifier runs; None for VGAE and fusion runs (they score a batch graph by graph)."""
    cfg = run.config
    if cfg.learning_type == "fusion" or not isinstance(run.model, GATClassifier):
        return None
    return BatchedGATModel(run.model, normalisation or run.normalisation).eval()


def batched_path(artefact: Path) -> Path:
    """Where the batched variant of an artefact lies: beside it, model_batched.onnx / .pt."""
    return artefact.with_name(f"{artefact.stem}_batched{artefact.suffix}")


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
        "calibration_rule": calibration_knobs(cfg),
        "normalisation_kind": cfg.dataset_config.normalisation,
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


def example_batch(meta: dict[str, Any]) -> tuple[torch.Tensor, ...]:
    """Two small graphs as one batch (3 + 2 nodes, 4 + 2 edges): shape example for the batched model."""
    x, node_id, edge_index, edge_attr = example_graph(meta)
    x2, e2 = torch.rand(2, x.shape[1]), torch.rand(2, edge_attr.shape[1])
    return (
        torch.cat([x, x2]),
        torch.cat([node_id, torch.tensor([1, 0])]),
        torch.cat([edge_index, torch.tensor([[3, 4], [4, 3]])], 1),
        torch.cat([edge_attr, e2]),
        torch.tensor([0, 0, 0, 1, 1]),
        torch.tensor([3.0, 2.0]),
    )


SINGLE_IO = (["x", "node_id", "edge_index", "edge_attr"], ["score", "node_score"])
BATCH_IO = (["x", "node_id", "edge_index", "edge_attr", "batch", "graph_nodes"], ["score"])


def _onnx_bytes(
    module: torch.nn.Module, example: tuple[torch.Tensor, ...], meta: dict[str, Any], io_names=SINGLE_IO
) -> bytes:
    import onnx

    axes = {"x": {0: "N"}, "node_id": {0: "N"}, "edge_index": {1: "E"}, "edge_attr": {0: "E"}}
    if io_names is BATCH_IO:
        axes |= {"batch": {0: "N"}, "graph_nodes": {0: "G"}, "score": {0: "G"}}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation chatter; errors still raise
        torch.onnx.export(
            module,
            example,
            # The TorchScript exporter (dynamo=False) writes to a file object; export's annotation
            # lists paths only.
            buffer,  # type: ignore[arg-type]
            input_names=io_names[0],
            output_names=io_names[1],
            dynamic_axes=axes,
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(meta)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def _torchscript_bytes(
    module: torch.nn.Module, example: tuple[torch.Tensor, ...], meta: dict[str, Any], io_names=SINGLE_IO
) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export
        traced = torch.jit.trace(module, example, check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={"kdgat.json": json.dumps(meta)})
    return buffer.getvalue()


def export_run(run_dir: Path, fmt: str, out: Path | None = None, calibration: Any = None) -> Path:
    """Write run_dir's artefact (default RUN_DIR/export/model.onnx or model.pt); returns its path.
    calibration: a car's fits (kdgat.deploy.calibrate.CarFit): the artefact is calibrated for it
    (normalisation inside the model, vocabulary and threshold in its metadata)."""
    from kdgat.deploy.native import native_path, native_weights, save_native  # numba: on demand

    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    run = _open_run(Path(run_dir))
    normalisation = calibration.normalisation if calibration is not None else None
    module = exported_module(run, normalisation)
    meta = artefact_meta(run, fmt)
    if calibration is not None:
        meta = calibrated_meta(meta, calibration)
    example = example_graph(meta)
    with torch.no_grad():
        data = (_onnx_bytes if fmt == "onnx" else _torchscript_bytes)(module, example, meta)
    target = Path(out) if out is not None else run.path / "export" / f"model{FORMATS[fmt]}"
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, data)
    batched = batched_module(run, normalisation)
    if batched is not None:  # a GAT classifier: its batched variant and native model beside it
        with torch.no_grad():
            data = (_onnx_bytes if fmt == "onnx" else _torchscript_bytes)(
                batched, example_batch(meta), {**meta, "batched": True}, BATCH_IO
            )
        atomic_write_bytes(batched_path(target), data)
        save_native(native_path(target), native_weights(module), {**meta, "format": "native"})
    else:  # VGAE, fusion GAT: neither; stale ones from an earlier export removed
        batched_path(target).unlink(missing_ok=True)
        native_path(target).unlink(missing_ok=True)
    return target


class Scorer:
    """Scores raw window graphs (numpy arrays) with an artefact or a run's plain-torch module:
    one graph (__call__), or a batch (score_batch: one call of the batched variant where the
    run has one, else graph by graph).

    backend: 'onnx' (ONNX Runtime), 'torchscript', 'torch' (eager, straight from a run dir) or
    'native' (a GAT classifier's compiled kernel, model_native.npz: kdgat/deploy/native.py).
    """

    def __init__(
        self,
        backend: str,
        meta: dict[str, Any],
        runner: Any,
        batch_runner: Any = None,
        source: Path | None = None,
    ) -> None:
        self.backend, self.meta, self._runner = backend, meta, runner
        self._batch_runner = batch_runner
        self.source = source  # the artefact file or run directory it was loaded from
        self.threshold = float(meta["threshold"])
        self.vocabulary = {int(k): v for k, v in meta["vocabulary"].items()}

    @property
    def native(self) -> Any:
        """The NativeGAT of a native scorer (its fused window path: NativeGAT.score_window)."""
        return self._runner if self.backend == "native" else None

    @property
    def batched(self) -> bool:
        return self._batch_runner is not None

    def __call__(
        self, x: np.ndarray, node_id: np.ndarray, edge_index: np.ndarray, edge_attr: np.ndarray
    ) -> tuple[float, np.ndarray]:
        if self.backend == "native":
            return self._runner(x, node_id, edge_index, edge_attr)
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

    def score_batch(
        self, graphs: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
    ) -> list[tuple[float, np.ndarray]]:
        """(score, node_score) of each graph (x, node_id, edge_index, edge_attr), in order."""
        if self._batch_runner is None or len(graphs) == 1:
            return [self(*g) for g in graphs]
        sizes = [len(g[1]) for g in graphs]
        offsets = np.cumsum([0, *sizes[:-1]])
        score = self.score_union(
            np.concatenate([g[0] for g in graphs]),
            np.concatenate([g[1] for g in graphs]),
            np.concatenate([g[2] + o for g, o in zip(graphs, offsets, strict=True)], 1),
            np.concatenate([g[3] for g in graphs]),
            np.asarray(sizes, dtype=np.int64),
        )
        return [(float(v), np.zeros(n, dtype=np.float32)) for v, n in zip(score.tolist(), sizes, strict=True)]

    def score_union(
        self,
        x: np.ndarray,
        node_id: np.ndarray,
        edge_index: np.ndarray,
        edge_attr: np.ndarray,
        sizes: np.ndarray,
    ) -> np.ndarray:
        """Scores (G,) of G graphs given as one disjoint union (nodes graph after graph, `sizes`
        of them each; edge_index into the union's nodes), in one call of the batched variant."""
        if self._batch_runner is None:
            raise ValueError("score_union needs the batched variant (a GAT classifier's export)")
        inputs = {
            "x": x,
            "node_id": node_id,
            "edge_index": edge_index,
            "edge_attr": edge_attr,
            "batch": np.repeat(np.arange(len(sizes), dtype=np.int64), sizes),
            "graph_nodes": sizes.astype(np.float32),
        }
        if self.backend == "onnx":
            (score,) = self._batch_runner.run(None, inputs)
            return score
        with torch.no_grad():
            return self._batch_runner(*(torch.from_numpy(v) for v in inputs.values())).numpy()


def _onnx_session(
    path: Path, threads: int, normalisation: dict[str, list[float]] | None = None
) -> tuple[dict[str, Any] | None, Any]:
    import onnx
    import onnxruntime

    proto = onnx.load(str(path), load_external_data=False)
    if normalisation is not None:
        onnx_normalisation(proto, normalisation, path)
    found = {p.key: p.value for p in proto.metadata_props}
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Errors only: ORT warns that the traced scatter tables' declared rank (the exporter's
    # shape inference of torch.zeros with a dynamic size) differs from the actual; harmless.
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(
        proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return (json.loads(found[META_KEY]) if META_KEY in found else None), session


def _torchscript_module(
    path: Path, normalisation: dict[str, list[float]] | None = None
) -> tuple[dict[str, Any] | None, Any]:
    extra = {"kdgat.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.load(str(path), _extra_files=extra)
    meta = json.loads(extra["kdgat.json"]) if extra["kdgat.json"] else None
    return meta, set_normalisation(module.eval(), normalisation)


def load_scorer(
    path: Path, threads: int = 1, batched: bool = True, normalisation: dict[str, list[float]] | None = None
) -> Scorer:
    """A Scorer for an artefact file (.onnx, .pt, model_native.npz) or a finished run directory.
    batched: also load the batched variant (model_batched.* beside the artefact; built for a
    run dir). A native model scores graph by graph in one compiled call each, on one thread.
    normalisation: a car's, in place of the artefact's (kdgat/deploy/calibrate.py: the metadata
    is the caller's to update)."""
    path = Path(path)
    if path.is_dir():
        run = _open_run(path)
        torch.set_num_threads(threads)
        batch = batched_module(run, normalisation) if batched else None
        module = exported_module(run, normalisation)
        return Scorer("torch", artefact_meta(run, "torch"), module, batch, path)
    if not path.is_file():
        raise UserError(f"{path} is neither a run directory nor an artefact file (.onnx, .pt, .npz).")
    if path.suffix == ".npz":
        from kdgat.deploy.native import load_native
        from kdgat.deploy.normalisation_swap import native_with_normalisation

        native_meta, native = load_native(path)
        if normalisation is not None:
            native = native_with_normalisation(native, normalisation)
        return Scorer("native", native_meta, native, source=path)
    if path.suffix not in (".onnx", ".pt"):
        raise UserError(
            f"{path}: unknown artefact type {path.suffix!r}; expected .onnx, .pt (TorchScript) or "
            f"model_native.npz (a GAT classifier's compiled scorer)."
        )
    if path.suffix == ".pt":
        torch.set_num_threads(threads)
    if path.suffix == ".onnx":
        load = lambda p: _onnx_session(p, threads, normalisation)  # noqa: E731
    else:
        load = lambda p: _torchscript_module(p, normalisation)  # noqa: E731
    meta, runner = load(path)
    if meta is None:
        kind = "an ONNX model" if path.suffix == ".onnx" else "a TorchScript file"
        raise UserError(f"{path} is {kind} without kdgat metadata; export it with python -m kdgat.export.")
    batch = None
    sibling = batched_path(path)
    if batched and sibling.is_file():
        batch_meta, batch = load(sibling)
        if batch_meta is None or batch_meta.get("config_digest") != meta["config_digest"]:
            raise UserError(
                f"{sibling} does not belong to {path} (another run's export); export the run again."
            )
    backend = "onnx" if path.suffix == ".onnx" else "torchscript"
    return Scorer(backend, meta, runner, batch, path)
