"""The decision threshold knob: each method's rule, its resolution and refusal, and old runs."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import configs
from configs import ExperimentConfig, ThresholdConfig
from kdgat.config.codec import load_yaml
from kdgat.config.resolve import resolve
from kdgat.evaluation.metrics import binary_metrics
from kdgat.evaluation.thresholds import best_f1_threshold, choose_threshold, target_fpr_threshold
from kdgat.stages.dqn_stage import best_fixed_alpha
from kdgat.stages.fusion import FusionInputs
from tests.helpers import FIXTURES, run_train


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("target", [0.0, 0.01, 0.05, 0.3])
def test_target_fpr_is_the_lowest_threshold_within_the_benign_budget(seed: int, target: float) -> None:
    rng = np.random.default_rng(seed)
    y = (rng.random(400) < 0.2).astype(int)
    score = np.round(rng.random(400) + y * 0.5, 2)  # rounded: ties between benign scores
    t = target_fpr_threshold(y, score, target)
    benign = score[y == 0]
    assert (benign >= t).mean() <= target + 1e-12
    # Any lower threshold at the next benign score below would flag more than the budget allows.
    lower = benign[benign < t]
    if len(lower):
        assert (benign >= lower.max()).mean() > target


def test_target_fpr_stays_midway_between_benign_scores() -> None:
    y = np.zeros(10, dtype=int)
    score = np.arange(10) / 10.0  # 0.0 .. 0.9; a 10 % budget flags the top benign window only
    assert target_fpr_threshold(y, score, 0.1) == pytest.approx(0.85)
    assert target_fpr_threshold(y, score, 0.0) > 0.9


def test_each_method_on_scores_a_fixed_half_misses() -> None:
    # A well-ranked classifier whose attack probabilities all sit below 0.5 (an unseen attack).
    y = np.array([0] * 90 + [1] * 10)
    score = np.r_[np.linspace(0.0, 0.2, 90), np.linspace(0.3, 0.45, 10)]
    cfg = ThresholdConfig()
    fixed = binary_metrics(y, score, choose_threshold("fixed", y, score, cfg))
    best = binary_metrics(y, score, choose_threshold("best_f1", y, score, cfg))
    fpr = binary_metrics(y, score, choose_threshold("target_fpr", y, score, cfg))
    assert fixed["recall"] == 0.0
    assert best["f1"] == 1.0
    assert fpr["recall"] == 1.0 and fpr["benign_fpr"] <= cfg.target_fpr


def test_auto_resolves_to_best_f1_and_fixed_is_refused_for_a_vgae() -> None:
    assert resolve(ExperimentConfig()).learning_config.threshold.method == "best_f1"
    vgae = ExperimentConfig(
        learning_type="unsupervised", model_architecture="VGAE", training_mode="normals_only"
    )
    fixed = dataclasses.replace(vgae.learning_config, threshold=ThresholdConfig(method="fixed"))
    with pytest.raises(configs.ConfigError, match="reconstruction error"):
        resolve(dataclasses.replace(vgae, learning_config=fixed))


def test_cli_refuses_fixed_for_a_vgae_without_a_traceback(tmp_path: Path) -> None:
    result = run_train(
        [
            "--learning-type",
            "unsupervised",
            "--model-architecture",
            "VGAE",
            "--training-mode",
            "normals_only",
            "--learning-config.threshold.method",
            "fixed",
            "--runs-root",
            str(tmp_path),
        ],
        tmp_path,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "best_f1 or target_fpr" in result.stderr


def test_an_old_run_config_keeps_deciding_as_it_did(tmp_path: Path) -> None:
    """config.yaml files written before the knob: a classifier decided at 0.5, a VGAE at its best
    validation F1; a hand-written partial file takes today's default."""
    old = load_yaml(FIXTURES / "run_2026-12_gat_tiny" / "config.yaml")
    assert old.model_architecture == "GAT" and old.learning_config.threshold.method == "fixed"
    text = (FIXTURES / "config_2026-11_automotive.yaml").read_text()
    assert "threshold:" not in text
    vgae = tmp_path / "vgae.yaml"
    vgae.write_text(
        text.replace("learning_type: classifier", "learning_type: unsupervised")
        .replace("model_architecture: GAT", "model_architecture: VGAE")
        .replace("training_mode: all_samples", "training_mode: normals_only")
    )
    assert load_yaml(vgae).learning_config.threshold.method == "best_f1"
    partial = tmp_path / "partial.yaml"
    partial.write_text("model_size: tiny\nlearning_config:\n  edge_loss_weight: 2.0\n")
    assert load_yaml(partial).learning_config.threshold.method == "auto"


def test_best_fixed_alpha_finds_the_informative_model() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.3).astype(int)
    informative = np.clip(y * 0.8 + rng.random(300) * 0.2, 0, 1)
    noise = rng.random(300)
    cfg = ExperimentConfig()
    for p_gat, p_vgae, want in ((informative, noise, 1.0), (noise, informative, 0.0)):
        inputs = FusionInputs(
            state=np.zeros((300, 1)), p_gat=p_gat, p_vgae=p_vgae, vgae_score=p_vgae, y=y, attack_type=[]
        )
        alpha = best_fixed_alpha(cfg, inputs)
        fused = alpha * p_gat + (1 - alpha) * p_vgae
        threshold = choose_threshold("best_f1", y, fused, cfg.learning_config.threshold)
        assert binary_metrics(y, fused, threshold)["f1"] == 1.0
        assert abs(alpha - want) < 0.5  # the weight leans to the model that carries the signal


def test_the_edge_read_out_threshold_weighs_each_flow_not_each_edge() -> None:
    from kdgat.evaluation.thresholds import flow_threshold

    default = resolve(ExperimentConfig(modality="internet"))
    assert default.learning_config.threshold.flow_method == "fixed"  # what 'auto' resolves to
    cfg = dataclasses.replace(
        default,
        learning_config=dataclasses.replace(
            default.learning_config, threshold=ThresholdConfig(method="best_f1", flow_method="best_f1")
        ),
    )
    # One attack edge (score 0.2) carries 50 flows; three benign edges (0.3) and one attack edge (0.9)
    # one flow each. Per edge the best cut is above 0.3 (F1 0.67 against 0.57 for flagging all);
    # per flow it is at or below 0.2 (51 of 51 attack flows for 3 false alarms: F1 0.97).
    flows = np.array([[0, 50], [1, 0], [1, 0], [1, 0], [0, 1]])
    scores = np.array([0.2, 0.3, 0.3, 0.3, 0.9])
    assert flow_threshold(cfg, flows, scores) <= 0.2
    assert best_f1_threshold(np.array([1, 0, 0, 0, 1]), scores) > 0.3
    assert flow_threshold(default, flows, scores) == 0.5


def test_fusion_headroom_counts_where_the_models_disagree_and_the_oracle_alpha() -> None:
    from kdgat.stages.dqn_stage import fusion_headroom

    y = np.array([1, 1, 1, 0, 0, 0])
    p_gat = np.array([0.9, 0.2, 0.1, 0.1, 0.8, 0.7])
    p_vgae = np.array([0.8, 0.9, 0.3, 0.2, 0.1, 0.9])
    out = fusion_headroom(y, p_gat, p_vgae, 0.5)
    # Disagreements: window 1 (VGAE right) and window 4 (VGAE right); both wrong: windows 2 and 5.
    assert out["disagree"] == 2 and out["gat_right_where_they_disagree"] == 0
    # The oracle alpha gets windows 0, 1, 3 and 4 right: TP 2, FN 1, FP 1 -> F1 2/3.
    assert out["oracle_per_window_alpha_f1"] == pytest.approx(2 / 3)
    for alpha in np.linspace(0, 1, 11):  # no fixed alpha beats the oracle
        fused = alpha * p_gat + (1 - alpha) * p_vgae
        assert binary_metrics(y, fused, 0.5)["f1"] <= out["oracle_per_window_alpha_f1"] + 1e-12
