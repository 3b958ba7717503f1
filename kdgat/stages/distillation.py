"""Knowledge distillation: a frozen teacher's outputs become extra targets for a smaller student.

standard
  - GAT (classifier or fusion): the teacher's class distribution softened at temperature T
    (Hinton et al. 2015), mixed with the student's own class-weighted cross-entropy:
    (1 - kd.alpha) * own + kd.alpha * T^2 * KL(teacher || student).
  - VGAE: the student's latent means, mapped by a learned linear projection to the teacher's
    latent width, match the teacher's; its reconstructions (node features, CAN-ID distribution,
    neighbourhood probabilities) match the teacher's.
  - DQN: the teacher's Q-values as a policy (softmax at temperature T) on the same windows,
    mixed with the TD loss (policy distillation, Rusu et al. 2016).
topology_preserving (GAT and VGAE) adds
  - local structure (LSP, Yang et al. 2020): for every node, the distribution of its similarity to
    each in-neighbour (cosine / kd_lsp_temperature, softmax over the neighbours) matches the
    teacher's, which is defined in the teacher's own embedding space, so the widths may differ;
  - relational KD (Park et al. 2019): the pairwise distances between the batch's graph
    embeddings, each set divided by its mean, match the teacher's.

The teacher sees every batch as it saw its own training data: a fusion-GAT teacher gets the
batch's raw node features extended by its own VGAE, not by the student's.
"""

import dataclasses
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from kdgat.common.errors import PrerequisiteError
from kdgat.data.graphs import Graphs
from kdgat.data.graphset import GraphBatch
from kdgat.models.gat import pool
from kdgat.models.vgae import VGAE, VGAEOutput
from kdgat.runs.store import Run
from kdgat.runs.upstream import check_same_data
from kdgat.stages.fusion import StateScaler, fusion_inputs, vgae_node_extras
from kdgat.training.kd_losses import local_structure_loss, relational_distance_loss, soft_target_kl
from kdgat.training.tasks import ClassifierTask, Task, VGAETask, as_classifier, as_vgae, reads_edges


@dataclasses.dataclass
class TeacherView:
    """What the teacher made of one batch."""

    nodes: torch.Tensor
    graphs: torch.Tensor
    logits: torch.Tensor | None = None
    vgae: VGAEOutput | None = None
    edge_logits: torch.Tensor | None = None


class GraphTeacher:
    """A frozen GAT or VGAE teacher (a fusion-GAT teacher with its own frozen VGAE)."""

    def __init__(self, run: Run, fusion_vgae: Run | None, raw_node_dim: int) -> None:
        self.run = run
        self.model = run.model
        self.fusion_vgae = fusion_vgae
        self.raw_node_dim = raw_node_dim

    @torch.no_grad()
    def view(self, batch: GraphBatch) -> TeacherView:
        if self.fusion_vgae is not None:
            raw = batch.with_x(batch.x[:, : self.raw_node_dim])
            extras = vgae_node_extras(self.fusion_vgae.model, raw)
            batch = raw.with_x(torch.cat([raw.x, extras.to(raw.x.dtype)], 1))
        if isinstance(self.model, VGAE):
            out = self.model(batch)
            return TeacherView(nodes=out.mu, graphs=pool(out.mu, batch, "mean"), vgae=out)
        nodes, graphs, logits = self.model.forward_parts(batch)
        edge_logits = None
        if reads_edges(self.model, batch):
            edge_logits = self.model.edge_logits(nodes, batch)
        return TeacherView(nodes=nodes, graphs=graphs, logits=logits, edge_logits=edge_logits)


class DistilledTask(Task):
    """The student's own task plus distillation terms; scoring, thresholds and early stopping are
    the own task's, so a distilled run is judged exactly like an undistilled one."""

    def __init__(self, base: ClassifierTask | VGAETask, teacher: GraphTeacher, student: nn.Module) -> None:
        super().__init__(base.cfg, base.train)
        self.base = base
        self.teacher = teacher
        self.topology = base.cfg.distillation == "topology_preserving"
        if isinstance(base, VGAETask):
            # The student's latent space is narrower: a learned map makes the teacher's comparable.
            self.trainable = nn.Linear(as_vgae(student).mu.out_features, teacher.model.mu.out_features)

    def epoch_graphs(self, epoch: int, generator: torch.Generator) -> torch.Tensor:
        return self.base.epoch_graphs(epoch, generator)

    def scores(self, model: nn.Module, batch: GraphBatch) -> torch.Tensor:
        return self.base.scores(model, batch)

    def edge_scores(self, model: nn.Module, batch: GraphBatch) -> torch.Tensor:
        return self.base.edge_scores(model, batch)

    def val_loss_graphs(self, val: Graphs) -> torch.Tensor:
        return self.base.val_loss_graphs(val)

    def threshold(self, y: np.ndarray, scores: np.ndarray) -> float:
        return self.base.threshold(y, scores)

    def monitor(self, val_metrics: dict, val_loss: float) -> tuple[float, ...]:
        return self.base.monitor(val_metrics, val_loss)

    def loss(self, model: nn.Module, batch: GraphBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        lc = self.cfg.learning_config
        teacher = self.teacher.view(batch)
        if isinstance(self.base, VGAETask):
            out = model(batch)
            terms, node_score = self.base.errors_of(as_vgae(model), out, batch)
            own = self.base.total(terms, node_score)
            if teacher.vgae is None:
                raise PrerequisiteError("a VGAE student needs a VGAE teacher (its view has no VGAE output)")
            kd, kd_terms = self._vgae_terms(out, teacher.vgae)
            nodes, graphs = out.mu, pool(out.mu, batch, "mean")
        else:
            classifier = as_classifier(model)
            nodes, graphs, logits = classifier.forward_parts(batch)
            own = self.base.cross_entropy(logits, batch.y, model.training)
            if teacher.logits is None:
                raise PrerequisiteError(
                    "a classifier student needs a classifier teacher (its view has no logits)"
                )
            kd = soft_target_kl(logits, teacher.logits, lc.kd.temperature)
            terms, kd_terms = {"cross_entropy": own}, {"kd_soft_targets": kd}
            if reads_edges(model, batch) and batch.edge_label is not None:  # (reads_edges: never None)
                edge_logits = classifier.edge_logits(nodes, batch)
                edge_ce = self.base.edge_cross_entropy(edge_logits, batch.edge_label)
                own = own + lc.edge_loss_weight * edge_ce
                terms["edge_cross_entropy"] = edge_ce
                if teacher.edge_logits is not None:  # the teacher's flow scores are soft targets too
                    edge_kd = soft_target_kl(edge_logits, teacher.edge_logits, lc.kd.temperature)
                    kd = kd + lc.edge_loss_weight * edge_kd
                    kd_terms["kd_edge_soft_targets"] = edge_kd
        total = (1 - lc.kd.alpha) * own + lc.kd.alpha * kd
        if self.topology:
            lsp = local_structure_loss(nodes, teacher.nodes, batch.edge_index, lc.kd.lsp_temperature)
            relational = relational_distance_loss(graphs, teacher.graphs)
            total = total + lc.kd.lsp_weight * lsp + lc.kd.relational_weight * relational
            kd_terms.update(kd_local_structure=lsp, kd_relational=relational)
        return total, {**terms, **kd_terms}

    def _vgae_terms(
        self, out: VGAEOutput, teacher: VGAEOutput
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        lc = self.cfg.learning_config
        if self.trainable is None:  # __init__ builds it for a VGAE base
            raise RuntimeError("the latent projection of VGAE distillation is missing")
        latent = F.mse_loss(self.trainable(out.mu.float()), teacher.mu.float())
        reconstruction = (
            F.mse_loss(out.x_hat.float(), teacher.x_hat.float())
            + soft_target_kl(out.id_logits, teacher.id_logits, lc.kd.temperature)
            + F.binary_cross_entropy_with_logits(
                out.neighbour_logits.float(), torch.sigmoid(teacher.neighbour_logits.float())
            )
        )
        kd = lc.kd.latent_weight * latent + lc.kd.reconstruction_weight * reconstruction
        return kd, {"kd_latent": latent, "kd_reconstruction": reconstruction}


def _teacher_upstream(teacher: Run, key: str, device: torch.device, purpose: str) -> Run:
    """A run the teacher itself built on (its recorded upstream), loaded on device."""
    run = teacher.upstream.get(key)
    if run is None or not (run.path / "checkpoints/best.pt").is_file():
        raise PrerequisiteError(
            f"{purpose}: the teacher {teacher.path} was trained on the outputs of {key} "
            f"{run.path if run else '(not recorded)'}, which is missing, so the teacher cannot see this "
            f"data as it saw its own. Restore that run, or train the teacher again."
        )
    return Run.open(run.path, device)


def load_graph_teacher(
    teacher_dir: Path, vocabulary: dict[int, int], normalisation: dict, device: torch.device, purpose: str
) -> GraphTeacher:
    run = Run.open(teacher_dir, device)
    check_same_data(run, vocabulary, normalisation, purpose)
    fusion_vgae = None
    if run.config.learning_type == "fusion":
        fusion_vgae = _teacher_upstream(run, "vgae_run", device, purpose)
    return GraphTeacher(run, fusion_vgae, raw_node_dim=len(normalisation["x_mean"]))


@torch.no_grad()
def dqn_teacher_q_values(
    teacher_dir: Path,
    graphs: Graphs,
    vocabulary: dict[int, int],
    normalisation: dict,
    device: torch.device,
    purpose: str,
    num_actions: int,
) -> torch.Tensor:
    """The teacher agent's Q-values on every graph, computed from its own VGAE and GAT."""
    teacher = Run.open(teacher_dir)  # the Q-network scores on the CPU, as during its training
    teacher_cfg = teacher.config
    if teacher_cfg.learning_config.dqn.actions != num_actions:
        raise PrerequisiteError(
            f"{purpose}: the teacher {teacher_dir} chooses among {teacher_cfg.learning_config.dqn.actions} "
            f"fusion weights and this student among {num_actions}; Q-values only match action by "
            f"action. Use --learning-config.dqn.actions {teacher_cfg.learning_config.dqn.actions}."
        )
    vgae = _teacher_upstream(teacher, "vgae_run", device, purpose)
    gat = _teacher_upstream(teacher, "gat_run", device, purpose)
    for run in (vgae, gat):
        check_same_data(run, vocabulary, normalisation, purpose)
    inputs = fusion_inputs(
        teacher_cfg, graphs, vgae.model, float(vgae.metrics["threshold"]), gat.model, device
    )
    scaler = StateScaler.from_state(teacher.best.info.state_scaler)
    return teacher.model(scaler(inputs.state))
