"""Distillation losses: pure functions of student and teacher tensors (see kdgat.stages.distillation)."""

import torch
from torch.nn import functional as F


def soft_target_kl(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """T^2 * KL(softmax(teacher / T) || softmax(student / T)), averaged over rows.

    The T^2 factor keeps the gradient scale independent of T (Hinton et al. 2015).
    """
    log_student = F.log_softmax(student_logits.float() / temperature, dim=-1)
    log_teacher = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    kl = F.kl_div(log_student, log_teacher, reduction="batchmean", log_target=True)
    return kl * temperature**2


def _segment_log_softmax(values: torch.Tensor, segment: torch.Tensor, num_segments: int) -> torch.Tensor:
    """log_softmax of values within each segment (edges grouped by their target node)."""
    largest = torch.full((num_segments,), -torch.inf, device=values.device, dtype=values.dtype)
    largest = largest.scatter_reduce(0, segment, values, reduce="amax", include_self=True)
    shifted = values - largest[segment].detach()
    sums = torch.zeros(num_segments, device=values.device, dtype=values.dtype)
    sums = sums.index_add(0, segment, shifted.exp())
    return shifted - sums[segment].log()


def neighbour_log_distribution(
    nodes: torch.Tensor, edge_index: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Per edge j->i: log P(j | i), the softmax over i's in-neighbours of cosine(h_i, h_j) / T."""
    h = F.normalize(nodes.float(), dim=-1)
    src, dst = edge_index
    similarity = (h[src] * h[dst]).sum(-1) / temperature
    return _segment_log_softmax(similarity, dst, nodes.shape[0])


def local_structure_loss(
    student_nodes: torch.Tensor, teacher_nodes: torch.Tensor, edge_index: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Mean over nodes with in-neighbours of KL(teacher's neighbour distribution || student's)."""
    if edge_index.shape[1] == 0:
        return student_nodes.sum() * 0.0
    log_t = neighbour_log_distribution(teacher_nodes, edge_index, temperature)
    log_s = neighbour_log_distribution(student_nodes, edge_index, temperature)
    per_edge = log_t.exp() * (log_t - log_s)
    # Counted on the device (torch.unique's size would make the host wait for the GPU).
    has_neighbours = torch.zeros(student_nodes.shape[0], dtype=torch.bool, device=edge_index.device)
    with_neighbours = has_neighbours.index_fill(0, edge_index[1], True).sum()
    return per_edge.sum() / with_neighbours


def normalised_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """Distances between every pair of rows (i < j), divided by their mean."""
    e = embeddings.float()
    i, j = torch.triu_indices(e.shape[0], e.shape[0], offset=1, device=e.device)
    # eps inside the root: identical windows give identical embeddings, and sqrt'(0) is infinite.
    distances = ((e[i] - e[j]) ** 2).sum(-1).add(1e-12).sqrt()
    return distances / distances.mean().detach().clamp_min(1e-8)


def relational_distance_loss(student_graphs: torch.Tensor, teacher_graphs: torch.Tensor) -> torch.Tensor:
    """Huber loss between the normalised pairwise distances of student and teacher embeddings."""
    if student_graphs.shape[0] < 2:
        return student_graphs.sum() * 0.0
    return F.smooth_l1_loss(normalised_distances(student_graphs), normalised_distances(teacher_graphs))
