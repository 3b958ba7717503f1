"""Per-modality scoring, the hook a modality's field needs beyond the common metrics: which scores
a detector thresholds (a plant decides on the mean score of its last hours) and the field's own
figures (BATADAL's S). Modalities without a hook decide on each window's score and add nothing.
"""

from typing import Any

import numpy as np

from configs import DatasetConfig
from kdgat.data.graphs import Graphs
from kdgat.evaluation.batadal import batadal_score, trailing_mean


class ModalityScoring:
    """The default: each window's own model score, no extra figures."""

    def decision_scores(self, graphs: Graphs, scores: np.ndarray, d: DatasetConfig) -> np.ndarray:
        """The scores a detector thresholds, from each window's own model score."""
        return scores

    def report(self, graphs: Graphs, scores: np.ndarray, threshold: float) -> dict[str, Any]:
        """The field's own figures for one test set, beside the common ones."""
        return {}


class WaterTreatmentScoring(ModalityScoring):
    def decision_scores(self, graphs: Graphs, scores: np.ndarray, d: DatasetConfig) -> np.ndarray:
        decided_hour = graphs.frame_stop.numpy() - 1
        return trailing_mean(graphs.source, decided_hour, scores, d.watertreatment.score_hours)

    def report(self, graphs: Graphs, scores: np.ndarray, threshold: float) -> dict[str, Any]:
        """BATADAL's S, S_TTD, S_CM, attacks detected and delays over the decided hours, beside
        what flagging every hour scores; one log's hours only (attack ids are per log)."""
        if len(graphs) == 0 or len(set(graphs.source)) != 1:
            return {}
        label = graphs.y.numpy()
        attack_id = np.array(
            [0 if t == "benign" else int(t.removeprefix("attack")) for t in graphs.attack_type]
        )
        attack_id = np.where(label == 1, attack_id, 0)
        decision = (np.asarray(scores) >= threshold).astype(np.int64)
        out = batadal_score(label, decision, attack_id)
        out["flag_all"] = {
            k: v
            for k, v in batadal_score(label, np.ones_like(decision), attack_id).items()
            if k.startswith("S")
        }
        out["decided_hours"] = len(label)
        return {"batadal": out}


SCORING: dict[str, ModalityScoring] = {"watertreatment": WaterTreatmentScoring()}
DEFAULT = ModalityScoring()


def modality_scoring(modality: str) -> ModalityScoring:
    """The scoring hook of a modality (the default for modalities with none)."""
    return SCORING.get(modality, DEFAULT)
