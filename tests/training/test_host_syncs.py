"""A training step never makes the host wait for the GPU, and never mixes devices (issue 30, defect 4),
checked on the CPU for the GAT classifier (with and without an edge read-out), the VGAE and their
distilled students (standard and topology_preserving).

Host syncs: kdgat.training.host_reads.HostReads sees every operator of one full step (host-to-device
copy, forward, loss, backward, clipping, optimizer step, loss log) and records those that read a
value back to the host: `.item()`/`int()`/`bool()` (aten._local_scalar_dense), nonzero, unique,
boolean-mask indexing (a nonzero inside), bincount, repeat_interleave without output_size. On the
CPU these cost nothing, on a GPU each is a wait. Adam's step counters are CPU tensors on a GPU too
(allowed); PyG GATv2Conv's removal of self-loops is counted apart (and its count pinned).

Device mixing: the same step on the `meta` device, where tensors have shapes but no values: a
tensor made on the CPU inside the step (or read back from the device) fails there as it would on a
GPU."""

from types import SimpleNamespace

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.tensorboard import SummaryWriter

from configs import ExperimentConfig
from kdgat.config.resolve import resolve
from kdgat.data.graphset import GraphBatch, GraphSet, gather_graphs
from kdgat.models import build_graph_model
from kdgat.stages.distillation import DistilledTask, GraphTeacher
from kdgat.training import graph_trainer
from kdgat.training.graph_trainer import GraphTrainer
from kdgat.training.host_reads import HostReads
from kdgat.training.optim import Optimisation
from kdgat.training.tasks import ClassifierTask, VGAETask

aten = torch.ops.aten


def _graphs(
    n: int = 16, nodes: int = 6, edges: int = 10, edge_labels: bool = False, seed: int = 0
) -> GraphSet:
    """n small graphs with self-loops among their edges and both classes."""
    g = torch.Generator().manual_seed(seed)
    node_ptr = torch.arange(n + 1) * nodes
    edge_ptr = torch.arange(n + 1) * edges
    edge_index = torch.randint(0, nodes, (2, n * edges), generator=g)
    edge_index[1, ::5] = edge_index[0, ::5]  # self-loops, as consecutive CAN frames of one ID make
    label = torch.randint(-1, 2, (n * edges,), generator=g) if edge_labels else None
    return GraphSet(
        x=torch.randn(n * nodes, 3, generator=g),
        node_id=torch.randint(0, 5, (n * nodes,), generator=g),
        node_label=torch.zeros(n * nodes, dtype=torch.long),
        edge_index=edge_index,
        edge_attr=torch.randn(n * edges, 2, generator=g),
        node_ptr=node_ptr,
        edge_ptr=edge_ptr,
        y=torch.arange(n) % 2,
        attack_type=["benign", "attack"] * (n // 2),
        source=["s"] * n,
        frame_start=torch.zeros(n, dtype=torch.long),
        frame_stop=torch.zeros(n, dtype=torch.long),
        edge_label=label,
        edge_flows=None if label is None else torch.ones(n * edges, 2, dtype=torch.long),
        edge_attack_type=None if label is None else ["x"] * (n * edges),
    )


VGAE = {"learning_type": "unsupervised", "model_architecture": "VGAE", "training_mode": "normals_only"}
CASES = {
    "gat": {},
    "gat-edge-readout": {"edge_readout": True},
    "vgae": VGAE,
    "gat-standard": {"distillation": "standard"},
    "gat-topology": {"distillation": "topology_preserving"},
    "vgae-standard": {**VGAE, "distillation": "standard"},
    "vgae-topology": {**VGAE, "distillation": "topology_preserving"},
}


def _trainer(case: str, device: torch.device) -> tuple[GraphTrainer, Optimisation]:
    levels = dict(CASES[case])
    edge_readout = levels.pop("edge_readout", False)
    cfg = resolve(ExperimentConfig(model_size="tiny", device="cpu", **levels))
    train = _graphs(edge_labels=edge_readout)
    torch.manual_seed(0)
    model = build_graph_model(cfg, num_ids=5, node_dim=3, edge_dim=2, edge_readout=edge_readout)
    task = VGAETask(cfg, train) if cfg.model_architecture == "VGAE" else ClassifierTask(cfg, train)
    if cfg.distillation != "no":
        teacher_cfg = resolve(
            ExperimentConfig(model_size="teacher", device="cpu", **{**levels, "distillation": "no"})
        )
        teacher = build_graph_model(teacher_cfg, num_ids=5, node_dim=3, edge_dim=2).eval().to(device)
        task = DistilledTask(task, GraphTeacher(SimpleNamespace(model=teacher), None, 3), model)
    trainer = GraphTrainer(cfg, task, model, train, device)
    return trainer, Optimisation(cfg, trainer.parameters(), device)


def _step(trainer: GraphTrainer, opt: Optimisation, step: int, writer: SummaryWriter) -> None:
    trainer.step(0, step, torch.arange(step * 8, step * 8 + 8), opt, writer)


def _host_batches(monkeypatch: pytest.MonkeyPatch, graphs: GraphSet) -> list[GraphBatch]:
    """Batches gathered before the step (gathering is the data layer's, issue 30 part 3), so the
    check covers what the step does with them."""
    gathered = [gather_graphs(graphs, torch.arange(i * 8, i * 8 + 8)) for i in range(2)]
    queue = list(gathered)
    monkeypatch.setattr(graph_trainer, "gather_graphs", lambda *_: queue.pop(0))  # steps 0, 1 in turn
    return gathered


@pytest.mark.parametrize("case", list(CASES))
def test_a_training_step_reads_nothing_back_from_the_device(
    case: str, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    trainer, opt = _trainer(case, torch.device("cpu"))
    _host_batches(monkeypatch, trainer.task.train)
    with SummaryWriter(str(tmp_path)) as writer:
        trainer.start_epoch(0)
        _step(trainer, opt, 0, writer)  # the first step creates the optimizer's state
        counters = [state["step"] for state in opt.optimizer.state.values()]
        with HostReads(allowed=counters, any_device=True) as reads:
            _step(trainer, opt, 1, writer)
    assert reads.reads == [], f"host syncs in one {case} training step: {reads.reads}"
    # What remains is PyG's: two masked selections (edges, edge features) per GATv2 layer and pass.
    layers = list(trainer.model.encoder.convs)
    if isinstance(trainer.task, DistilledTask):
        layers += trainer.task.teacher.model.encoder.convs
    assert reads.pyg_self_loops == 2 * len(layers)
    assert trainer.global_step == 2 and opt._optimizer_steps == 2  # both steps really stepped


class HostCopies(TorchDispatchMode):
    """Records every copy of a CPU tensor to another device."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: list[torch.Tensor] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func in (aten._to_copy.default, aten.copy_.default):
            source = args[0] if func is aten._to_copy.default else args[1]
            target = out if func is aten._to_copy.default else args[0]
            if source.device.type == "cpu" and target.device.type != "cpu":
                self.sources.append(source)
        return out


@pytest.mark.parametrize("case", list(CASES))
def test_a_training_step_runs_on_one_device(case: str, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from torch_geometric.nn.conv import gatv2_conv

    remove_self_loops = gatv2_conv.remove_self_loops

    def shapes_only(edge_index: torch.Tensor, edge_attr: torch.Tensor | None = None):
        # Meta tensors hold no values, so which edges are loops is unknowable: keep them all.
        if edge_index.is_meta:
            return edge_index, edge_attr
        return remove_self_loops(edge_index, edge_attr)

    monkeypatch.setattr(gatv2_conv, "remove_self_loops", shapes_only)
    meta = torch.device("meta")
    trainer, opt = _trainer(case, meta)
    batch = _host_batches(monkeypatch, trainer.task.train)[1]
    with SummaryWriter(str(tmp_path)) as writer:
        trainer.start_epoch(0)
        _step(trainer, opt, 0, writer)
        with HostCopies() as copies:
            _step(trainer, opt, 1, writer)
    assert all(p.is_meta for p in trainer.parameters())

    # The one thing a step copies to the device is its batch (not, e.g., the class weights again).
    def kinds(tensors) -> list[str]:
        return sorted(f"{t.dtype} {tuple(t.shape)}" for t in tensors)

    assert kinds(copies.sources) == kinds(v for v in vars(batch).values() if torch.is_tensor(v))
    assert len(trainer.losses.pending) == 2 and all(s.values.is_meta for s in trainer.losses.pending)
