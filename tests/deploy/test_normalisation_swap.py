"""A car's normalisation swapped into an exported model (ONNX, TorchScript, native) scores as the
model exported with that normalisation: what a detector calibrating itself relies on."""

from pathlib import Path

import numpy as np
import pytest
import torch

from kdgat.common.errors import UserError
from kdgat.deploy.artefact import _onnx_bytes, _torchscript_bytes, example_graph, load_scorer
from kdgat.deploy.native import NativeGAT, native_weights
from kdgat.deploy.normalisation_swap import native_with_normalisation
from kdgat.deploy.plain import ExportedGraphModel
from tests.deploy.test_native import _exported, _native_scores, _scores, graphs  # noqa: F401

pytestmark = pytest.mark.real_data


def _another(normalisation: dict[str, list[float]]) -> dict[str, list[float]]:
    """A car's normalisation: every mean moved and every std scaled, differently per feature."""
    rng = np.random.default_rng(3)
    out = {}
    for mean, std in (("x_mean", "x_std"), ("edge_mean", "edge_std")):
        m, s = np.asarray(normalisation[mean]), np.asarray(normalisation[std])
        out[mean] = (m + s * rng.normal(0, 1, len(m))).tolist()
        out[std] = (s * rng.uniform(0.5, 2.0, len(s))).tolist()
    return out


def test_a_swapped_normalisation_scores_as_the_model_exported_with_it(graphs, tmp_path: Path) -> None:  # noqa: F811
    windows, normalisation, num_ids = graphs
    car = _another(normalisation)
    trained = _exported(num_ids, normalisation, windows)
    for_car = ExportedGraphModel(trained.classifier, car).eval()  # the same weights, the car's normalisation
    want = _scores(for_car, windows)
    assert np.abs(want - _scores(trained, windows)).max() > 1e-3  # the swap matters
    native = native_with_normalisation(NativeGAT(native_weights(trained)), car)
    np.testing.assert_array_equal(
        _native_scores(native, windows), _native_scores(NativeGAT(native_weights(for_car)), windows)
    )
    np.testing.assert_allclose(_native_scores(native, windows), want, atol=1e-5)
    meta = {
        "node_features": ["f"] * windows[0][0].shape[1],
        "edge_features": ["e"] * windows[0][3].shape[1],
        "threshold": 0.5,
        "vocabulary": {},
    }
    with torch.no_grad():
        for suffix, write in ((".onnx", _onnx_bytes), (".pt", _torchscript_bytes)):
            path = tmp_path / f"model{suffix}"
            path.write_bytes(write(trained, example_graph(meta), meta))
            swapped = load_scorer(path, normalisation=car)
            np.testing.assert_allclose([swapped(*g)[0] for g in windows], want, atol=1e-5)
            unchanged = load_scorer(path)
            np.testing.assert_allclose(
                [unchanged(*g)[0] for g in windows], _scores(trained, windows), atol=1e-5
            )


def test_a_normalisation_of_another_width_is_refused(graphs) -> None:  # noqa: F811
    _, normalisation, num_ids = graphs
    wrong = {**normalisation, "x_mean": normalisation["x_mean"][:-1]}
    with pytest.raises(UserError, match="x_mean holds"):
        native_with_normalisation(NativeGAT(native_weights(_exported(num_ids, normalisation))), wrong)
