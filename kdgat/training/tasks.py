"""What a model learns and how it is scored, separate from the loop that optimises it.

A task gives the loop: which training graphs an epoch uses (all, benign only, or a curriculum),
the loss of a batch with its named terms, a per-graph score (higher = more likely an attack),
the decision threshold chosen on validation, and the value early stopping maximises.
"""

import abc
from typing import cast

import numpy as np
import torch

from configs import ExperimentConfig
from kdgat.data.graphs import Graphs
from kdgat.data.graphset import GraphBatch
from kdgat.evaluation.thresholds import validation_threshold
from kdgat.models.gat import GraphClassifier
from kdgat.models.vgae import VGAE, VGAEOutput, graph_scores


def reads_edges(model: torch.nn.Module, batch: GraphBatch) -> bool:
    """The model has an edge read-out and the batch labels its edges."""
    return getattr(model, "edge_head", None) is not None and batch.edge_label is not None


class Task(abc.ABC):
    """Base: all training graphs every epoch; the configured threshold; maximise validation F1."""

    trainable: torch.nn.Module | None = None
    """Parameters the task itself learns besides the model's (e.g. a distillation projection);
    the loop optimises and checkpoints them with the model."""

    def __init__(self, cfg: ExperimentConfig, train: Graphs) -> None:
        self.cfg = cfg
        self.train = train

    def epoch_graphs(self, epoch: int, generator: torch.Generator) -> torch.Tensor:
        """Indices of the training graphs used in this epoch, shuffled by generator."""
        return torch.randperm(len(self.train), generator=generator)

    @abc.abstractmethod
    def loss(self, model: torch.nn.Module, batch: GraphBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The batch's loss and its named terms (the NaN guard prints them)."""

    @abc.abstractmethod
    def scores(self, model: torch.nn.Module, batch: GraphBatch) -> torch.Tensor:
        """Per-graph score, higher = more likely an attack."""

    def edge_scores(self, model: torch.nn.Module, batch: GraphBatch) -> torch.Tensor:
        """Per-edge score, for models with an edge read-out (ClassifierTask)."""
        raise NotImplementedError(f"{type(self).__name__} scores no edges")

    def val_loss_graphs(self, val: Graphs) -> torch.Tensor:
        """Which validation graphs the validation loss averages over."""
        return torch.ones(len(val), dtype=torch.bool)

    def threshold(self, y: np.ndarray, scores: np.ndarray) -> float:
        """The decision threshold on validation (--learning-config.threshold)."""
        return validation_threshold(self.cfg, y, scores)

    def monitor(self, val_metrics: dict, val_loss: float) -> tuple[float, ...]:
        """Early stopping keeps the epoch with the largest value (compared as a tuple)."""
        return (round(val_metrics["f1"], 6), -val_loss)


def as_classifier(model: torch.nn.Module) -> GraphClassifier:
    """A classifier task's model as the GraphClassifier it is (possibly behind a wrapper such as
    torch.compile's, which forwards attributes): for the type checker, nothing is converted."""
    return cast(GraphClassifier, model)


def as_vgae(model: torch.nn.Module) -> VGAE:
    """A VGAE task's model as the VGAE it is (see as_classifier)."""
    return cast(VGAE, model)


def balanced_weights(y: torch.Tensor) -> torch.Tensor:
    """Inverse class frequency of these labels (benign, attack), scaled to average 1 per graph."""
    counts = torch.bincount(y, minlength=2).double().clamp_min(1)
    return (counts.sum() / (2 * counts)).float()


class ClassifierTask(Task):
    """Supervised graph classification with class-weighted cross-entropy."""

    def __init__(self, cfg: ExperimentConfig, train: Graphs, curriculum_scores: np.ndarray | None = None):
        super().__init__(cfg, train)
        self.weights = (
            balanced_weights(train.y) if cfg.learning_config.class_weighting == "balanced" else None
        )
        self.split_weights = self.weights  # validation loss: the same weights every epoch, comparable
        self.curriculum_scores = curriculum_scores
        self._device_copies: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.edge_weights = None
        if train.edge_label is not None and cfg.learning_config.class_weighting == "balanced":
            labelled = train.edge_label[train.edge_label >= 0]
            counts = torch.bincount(labelled, minlength=2).double().clamp_min(1)
            self.edge_weights = (counts.sum() / (2 * counts)).float()

    def epoch_graphs(self, epoch: int, generator: torch.Generator) -> torch.Tensor:
        if self.curriculum_scores is None:
            return super().epoch_graphs(epoch, generator)
        selected = curriculum_selection(self.cfg, self.train.y, self.curriculum_scores, epoch, generator)
        if self.weights is not None:
            # Balance the classes the epoch shows, not the whole split: a curriculum epoch holds one
            # to a few benign graphs per attack, so split-wide weights would overweight attacks again.
            self.weights = balanced_weights(self.train.y[selected])
        return selected

    def loss(self, model: torch.nn.Module, batch: GraphBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if not reads_edges(model, batch) or batch.edge_label is None:  # (reads_edges: never None then)
            logits = model(batch)
            ce = self.cross_entropy(logits, batch.y, model.training)
            return ce, {"cross_entropy": ce}
        classifier = as_classifier(model)
        nodes, _, logits = classifier.forward_parts(batch)
        ce = self.cross_entropy(logits, batch.y, model.training)
        edge_ce = self.edge_cross_entropy(classifier.edge_logits(nodes, batch), batch.edge_label)
        total = ce + self.cfg.learning_config.edge_loss_weight * edge_ce
        return total, {"cross_entropy": ce, "edge_cross_entropy": edge_ce}

    def cross_entropy(self, logits: torch.Tensor, y: torch.Tensor, training: bool = True) -> torch.Tensor:
        role, weights = ("epoch", self.weights) if training else ("split", self.split_weights)
        weights = self._on_device(role, weights, logits.device)
        return torch.nn.functional.cross_entropy(logits.float(), y, weight=weights)

    def edge_cross_entropy(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Class-weighted cross-entropy over the edges that stand for labelled flows (label -1:
        only unlabelled flows, not learned from); 0 for a batch without any."""
        weights = self._on_device("edge", self.edge_weights, logits.device)
        ce = torch.nn.functional.cross_entropy(logits.float(), labels, weight=weights, ignore_index=-1)
        # Without a labelled edge the mean is 0/0. Chosen on the device: an `if` on the labels
        # would make the host wait for the GPU at every step. The NaN branch gets no gradient.
        return torch.where((labels >= 0).any(), ce, torch.zeros_like(ce))

    def _on_device(
        self, role: str, weights: torch.Tensor | None, device: torch.device
    ) -> torch.Tensor | None:
        """weights on device, copied there once (again only when a curriculum epoch replaces
        them), not at every step."""
        if weights is None or weights.device == device:
            return weights
        cached = self._device_copies.get(role)
        if cached is None or cached[0] is not weights or cached[1].device != device:
            cached = self._device_copies[role] = (weights, weights.to(device))
        return cached[1]

    def scores(self, model: torch.nn.Module, batch: GraphBatch) -> torch.Tensor:
        logits = model(batch).float()
        return torch.softmax(logits, -1)[:, 1]

    def edge_scores(self, model: torch.nn.Module, batch: GraphBatch) -> torch.Tensor:
        """Attack probability of every edge of the batch (the model's edge read-out)."""
        classifier = as_classifier(model)
        nodes = classifier.encoder(batch)
        return torch.softmax(classifier.edge_logits(nodes, batch).float(), -1)[:, 1]


class VGAETask(Task):
    """Reconstruction of benign structure; anomaly score = pooled reconstruction error.

    normals_only trains and validates the loss on benign graphs only; all_samples trains on every
    graph without labels.
    """

    def epoch_graphs(self, epoch: int, generator: torch.Generator) -> torch.Tensor:
        order = torch.randperm(len(self.train), generator=generator)
        if self.cfg.training_mode == "normals_only":
            order = order[self.train.y[order] == 0]
        return order

    def val_loss_graphs(self, val: Graphs) -> torch.Tensor:
        return val.y == 0

    def _errors(self, model: VGAE, batch: GraphBatch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        out = model(batch)
        return self.errors_of(model, out, batch)

    def errors_of(
        self, model: VGAE, out: VGAEOutput, batch: GraphBatch
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Mean loss terms and the per-node anomaly score of one forward pass."""
        errors = model.node_errors(out, batch)
        lc = self.cfg.learning_config
        node_score = (
            lc.vgae.feature_weight * errors.feature
            + lc.vgae.id_weight * errors.can_id
            + lc.vgae.neighbour_weight * errors.neighbour
        )
        terms = {
            "feature": errors.feature.mean(),
            "can_id": errors.can_id.mean(),
            "neighbour": errors.neighbour.mean(),
            "kl": errors.kl.mean(),
        }
        return terms, node_score

    def loss(self, model: torch.nn.Module, batch: GraphBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        terms, node_score = self._errors(as_vgae(model), batch)
        return self.total(terms, node_score), terms

    def total(self, terms: dict[str, torch.Tensor], node_score: torch.Tensor) -> torch.Tensor:
        return node_score.mean() + self.cfg.learning_config.vgae.kl_weight * terms["kl"]

    def scores(self, model: torch.nn.Module, batch: GraphBatch) -> torch.Tensor:
        _, node_score = self._errors(as_vgae(model), batch)
        return graph_scores(
            node_score, batch.batch, batch.num_graphs, self.cfg.learning_config.vgae.score_pooling
        )

    def monitor(self, val_metrics: dict, val_loss: float) -> tuple[float, ...]:
        return (-val_loss,)


def curriculum_progress(cfg: ExperimentConfig, epoch: int) -> float:
    ramp = cfg.learning_config.curriculum.ramp_epochs or cfg.training_config.epochs
    return 1.0 if ramp <= 1 else min(epoch / (ramp - 1), 1.0)


def curriculum_selection(
    cfg: ExperimentConfig,
    y: torch.Tensor,
    difficulty: np.ndarray,
    epoch: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """All attack graphs plus benign graphs picked by VGAE difficulty, harder as epochs pass.

    At progress p in [0, 1] the benign pool is the easiest `percentile(p)` percent of benign
    graphs (by VGAE anomaly score), and `ratio(p)` benign graphs are drawn per attack graph.
    """
    lc = cfg.learning_config
    p = curriculum_progress(cfg, epoch)
    percentile = lc.curriculum.start_percentile + p * (
        lc.curriculum.end_percentile - lc.curriculum.start_percentile
    )
    ratio = lc.curriculum.start_ratio + p * (lc.curriculum.end_ratio - lc.curriculum.start_ratio)
    attacks = torch.nonzero(y == 1).flatten()
    benign = torch.nonzero(y == 0).flatten()
    by_difficulty = benign[torch.from_numpy(np.argsort(difficulty[benign.numpy()], kind="stable"))]
    pool = by_difficulty[: max(1, round(len(benign) * percentile / 100.0))]
    wanted = min(len(pool), max(1, round(ratio * max(len(attacks), 1))))
    chosen = pool[torch.randperm(len(pool), generator=generator)[:wanted]]
    selected = torch.cat([attacks, chosen])
    return selected[torch.randperm(len(selected), generator=generator)]
