"""The memory-mapped graph store gives, batch by batch, exactly the graphs the in-memory path gives;
the normalisation fit reads a few columns at a time and still gives torch's whole-matrix figures;
pages read through the maps leave the resident set; batches move without copies; graphs go to the
training device only when they fit."""

import dataclasses
import re
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import configs
from kdgat.data import normalisation, placement
from kdgat.data.cache import MAPPED_PAGES, map_entry
from kdgat.data.dataset import capture_jobs, load_splits
from kdgat.data.graphset import GraphBatch, GraphSet, assemble
from kdgat.data.normalisation import build_vocabulary, fit_normalisation, normalise
from kdgat.data.placement import DeviceGraphs, place_on_device
from kdgat.data.prepare import prepare_files
from kdgat.data.registry import modality_of
from kdgat.data.store import GraphStore, View
from tests.helpers import REPO, shared_data

FIELDS = ("x", "node_id", "node_label", "edge_index", "edge_index_local", "edge_attr", "batch")
FIELDS += ("node_ptr", "edge_ptr", "y", "edge_label")


def config(tmp_path: Path, dataset: str, folder: str, modality: str) -> configs.ExperimentConfig:
    cfg = configs.ExperimentConfig(modality=modality, dataset=dataset)  # type: ignore[arg-type]
    d = dataclasses.replace(cfg.dataset_config, data_root=shared_data(folder), cache_dir=tmp_path / "cache")
    return dataclasses.replace(cfg, dataset_config=d)


CASES = {
    "CAN, learned IDs": ("set01", "can_train_and_test", "automotive"),
    "flows, edge labels": ("stratosphere", "internet_stratosphere_zeek", "internet"),
}


def in_memory(raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: np.array(values) for name, values in raw.items()}


def store_and_reference(cfg: configs.ExperimentConfig) -> tuple[GraphStore, GraphSet]:
    """The training graphs of cfg's data, normalised, as a store over the mapped cache and as the
    in-memory GraphSet the graphs were held in before the store (assemble, concat, normalise)."""
    modality = modality_of(cfg)
    _, jobs, _ = capture_jobs(cfg)
    prepared = [p for p in prepare_files(jobs, cfg.dataset_config, modality) if "train" in p.bounds]
    vocabulary = build_vocabulary([p.vocabulary_ids() for p in prepared])
    vocabulary = vocabulary if modality.learns_identity else None
    store = GraphStore.of_parts(
        [part for p in prepared for part in p.parts("train", View.of(vocabulary))], modality.widths
    )
    names = [p.info.get("attack_names") for p in prepared]
    reference = GraphSet.concat(
        [
            assemble(in_memory(p.blocks[role]), vocabulary, p.attack_type, str(p.path), modality.widths, n)
            for p, n in zip(prepared, names, strict=True)
            for role in ("train", "train_tail")
            if len(p.blocks.get(role, {}).get("y", ()))
        ]
    )
    stats = fit_normalisation(reference, "standard")
    return store.normalised(stats), normalise(reference, stats)


def assert_same_batch(a: GraphBatch, b: GraphBatch) -> None:
    for name in FIELDS:
        left, right = getattr(a, name), getattr(b, name)
        assert (left is None) == (right is None), name
        if left is not None:
            assert left.dtype == right.dtype and torch.equal(left.cpu(), right.cpu()), name


@pytest.mark.real_data
@pytest.mark.parametrize("case", sorted(CASES))
def test_store_batches_are_the_in_memory_batches_bit_for_bit(tmp_path: Path, case: str) -> None:
    store, reference = store_and_reference(config(tmp_path, *CASES[case]))
    assert len(store.parts) > 1 and len(store) == len(reference)
    for name in ("y", "node_ptr", "edge_ptr", "frame_start", "frame_stop", "time_start", "time_stop"):
        left, right = getattr(store, name), getattr(reference, name)
        assert (left is None) == (right is None) and (left is None or torch.equal(left, right)), name
    assert store.attack_type == reference.attack_type and store.source == reference.source
    assert (store.node_dim, store.edge_dim) == (reference.node_dim, reference.edge_dim)
    generator = torch.Generator().manual_seed(0)
    for index in torch.randperm(len(store), generator=generator).split(64)[:20]:  # graphs of every part
        assert_same_batch(store.gather(index), reference.gather(index))
    for index in torch.arange(len(store)).split(500):  # in order, as validation reads them
        assert_same_batch(store.gather(index), reference.gather(index))
    # Parts held in memory (no cache map to read from) are indexed instead, to the same batches.
    held = GraphStore.of_parts(
        [dataclasses.replace(p, raw=in_memory(p.raw)) for p in store.parts], store.widths
    )
    for index in torch.randperm(len(store), generator=generator).split(64)[:5]:
        assert_same_batch(held.gather(index), reference.gather(index))
    assert held._reader("x", 0) is None and store._reader("x", 0) is not None
    mask = torch.rand(len(store), generator=generator) < 0.3
    part, whole = store.subset(mask), reference.subset(mask)
    assert_same_batch(part.gather(torch.arange(len(part))), whole.gather(torch.arange(len(whole))))
    both = GraphSet.concat([part, store])
    assert isinstance(both, GraphStore) and len(both) == len(part) + len(store)
    assert_same_batch(both.gather(torch.arange(len(part))), whole.gather(torch.arange(len(part))))
    for name in ("edge_label", "edge_flows"):
        left, right = getattr(store, name), getattr(reference, name)
        assert (left is None) == (right is None) and (left is None or torch.equal(left, right)), name
    assert store.edge_attack_type == reference.edge_attack_type
    extras = torch.randn(int(store.node_ptr[-1]), 3, generator=generator)
    index = torch.randperm(len(store), generator=generator)[:64]
    assert_same_batch(
        store.with_node_extras(extras).gather(index), reference.with_node_extras(extras).gather(index)
    )
    assert store.materialise().x.shape == reference.x.shape


@pytest.mark.real_data
def test_fit_reads_a_few_columns_at_a_time_and_gives_torchs_whole_matrix_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks of 2 to 5 columns, a lone last column read as a block of two: the statistics are
    those of x.mean(0) and x.std(0) over the whole [rows, features] matrix, bit for bit."""
    store, _ = store_and_reference(config(tmp_path, *CASES["CAN, learned IDs"]))
    raw = GraphStore(
        [dataclasses.replace(p, view=dataclasses.replace(p.view, stats=None)) for p in store.parts],
        store.graph_part,
        store.graph_local,
        store.widths,
    )
    benign = raw.y == 0
    whole = raw.materialise()
    x = whole.node_columns(list(range(whole.node_dim)), benign)
    e = whole.edge_columns(list(range(whole.edge_dim)), benign)
    expected = {
        "x_mean": x.mean(0).tolist(),
        "x_std": x.std(0).clamp_min(normalisation.STD_FLOOR).tolist(),
        "edge_mean": e.mean(0).tolist(),
        "edge_std": e.std(0).clamp_min(normalisation.STD_FLOOR).tolist(),
    }
    assert fit_normalisation(raw, "standard") == expected
    rows = len(x)
    for columns in (2, 3, 5):  # 36 node columns: 18 pairs, 12 triples, 7 blocks of 5 and a lone one
        monkeypatch.setattr(normalisation, "FIT_BYTES", 8 * rows * columns)
        fitted = fit_normalisation(raw, "standard")
        assert (fitted["x_mean"], fitted["x_std"]) == (expected["x_mean"], expected["x_std"]), columns
        # (the edges outnumber the nodes: at these budgets they may take the grouped path below)
        assert fitted["edge_std"] == pytest.approx(expected["edge_std"], rel=1e-12), columns
    # Past two columns of every row (a corpus of ~10^8 frames), the graphs are read in groups and
    # the statistics accumulated in float64: equal to rounding, and never all rows at once.
    widest: list[int] = []
    real_node_columns = type(raw).node_columns

    def counted(self, columns, graph_mask):
        block = real_node_columns(self, columns, graph_mask)
        widest.append(block.numel() * 8)
        return block

    monkeypatch.setattr(type(raw), "node_columns", counted)
    for budget in (8 * rows, 2 * rows, rows // 4):
        monkeypatch.setattr(normalisation, "FIT_BYTES", budget)
        widest.clear()
        streamed = fit_normalisation(raw, "standard")
        for key, values in expected.items():
            assert streamed[key] == pytest.approx(values, rel=1e-12, abs=1e-12), (budget, key)
        assert len(widest) > 2 and max(widest) < budget + 8 * 36 * 200  # a group may end one graph late


def resident_file_bytes() -> int:
    status = Path("/proc/self/status").read_text() if Path("/proc/self/status").exists() else ""
    found = re.search(r"RssFile:\s+(\d+) kB", status)
    if not found:
        pytest.skip("no RssFile in /proc/self/status on this system")
    return int(found.group(1)) * 1024


@pytest.mark.real_data
def test_pages_read_through_the_maps_leave_the_resident_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_and_reference(config(tmp_path, *CASES["CAN, learned IDs"]))  # fills the cache
    entry = sorted((tmp_path / "cache" / "graphs").rglob("*.kdg"), key=lambda p: -p.stat().st_size)[0]
    arrays, _ = map_entry(entry)
    MAPPED_PAGES.release()
    before = resident_file_bytes()
    size = sum(a.nbytes for a in arrays.values())
    assert sum(float(a.astype(np.float64).sum()) for a in arrays.values()) != 0.0  # touches every page
    assert resident_file_bytes() - before > 0.8 * size
    MAPPED_PAGES.release()
    assert resident_file_bytes() - before < 0.2 * size
    # Past the budget, the next read releases them, however few bytes it says it read: what a
    # spot read maps is the kernel's choice (fault-around, large folios), so the growth is measured.
    monkeypatch.setattr(type(MAPPED_PAGES), "RELEASE_BYTES", int(0.25 * size))
    assert sum(float(a.astype(np.float64).sum()) for a in arrays.values()) != 0.0
    MAPPED_PAGES.note_read(1)
    assert resident_file_bytes() - before < 0.2 * size
    with pytest.raises(ValueError, match="read-only"):
        arrays["train.x"][0, 0] = 1.0  # the maps are read-only: nothing writes to the cache by accident


@pytest.mark.real_data
def test_random_batches_read_nothing_through_the_maps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An epoch of random batches copies its graphs out of the cache files (spot_reads) and maps no
    page: the file-backed pages resident in this process do not grow, with no release to keep them
    down. Read through the maps instead (the store before spot_reads), the same epoch does grow
    them, which is what this test would catch."""
    cfg = config(tmp_path, *CASES["CAN, learned IDs"])
    load_splits(cfg)  # fills the cache: the second load maps its entries
    store = load_splits(cfg).train
    monkeypatch.setattr(type(MAPPED_PAGES), "RELEASE_BYTES", 1 << 60)  # never released: growth shows
    order = torch.randperm(len(store), generator=torch.Generator().manual_seed(0))

    def epoch_growth() -> int:
        store.gather(order[:64])  # code pages of the libraries a gather runs are file-backed too
        MAPPED_PAGES.release()
        start, peak = resident_file_bytes(), 0
        for batch in order.split(64):
            store.gather(batch)
            peak = max(peak, resident_file_bytes() - start)
        return peak

    assert epoch_growth() < 1 << 20
    monkeypatch.setattr(GraphStore, "_reader", lambda *args: None)
    assert epoch_growth() > 8 << 20


def test_a_batch_moved_to_its_own_device_shares_every_tensor() -> None:
    """GraphBatch.to no longer deep-copies (dataclasses.asdict did, for every batch)."""
    graphs = GraphSet(
        x=torch.randn(5, 3),
        node_id=torch.arange(5),
        node_label=torch.zeros(5, dtype=torch.long),
        edge_index=torch.tensor([[0, 1, 0], [1, 0, 0]]),
        edge_attr=torch.randn(3, 2),
        node_ptr=torch.tensor([0, 2, 5]),
        edge_ptr=torch.tensor([0, 2, 3]),
        y=torch.tensor([0, 1]),
        attack_type=["benign", "attack"],
        source=["a", "a"],
        frame_start=torch.tensor([0, 10]),
        frame_stop=torch.tensor([10, 20]),
        edge_label=torch.tensor([0, 1, -1]),
    )
    batch = graphs.gather(torch.tensor([1, 0]))
    moved = batch.to(torch.device("cpu"))
    for field in dataclasses.fields(batch):
        value = getattr(batch, field.name)
        if isinstance(value, torch.Tensor):
            assert getattr(moved, field.name).data_ptr() == value.data_ptr(), field.name


@pytest.mark.real_data
def test_device_resident_graphs_give_the_same_batches_and_stay_on_their_device(tmp_path: Path) -> None:
    """DeviceGraphs indexes a batch where its graphs live from host-computed rows; on CPU it must
    equal the store's batches, and on the meta device every tensor of a batch must be there
    (nothing left on the host to mix into a CUDA step)."""
    store, _ = store_and_reference(config(tmp_path, *CASES["flows, edge labels"]))
    resident = DeviceGraphs(store, torch.device("cpu"))
    assert len(resident) == len(store) and resident.attack_type == store.attack_type
    for index in torch.randperm(len(store), generator=torch.Generator().manual_seed(1)).split(64)[:10]:
        assert_same_batch(resident.gather(index), store.gather(index))
    on_meta = DeviceGraphs(store, torch.device("meta")).gather(torch.arange(10))
    for field in dataclasses.fields(on_meta):
        value = getattr(on_meta, field.name)
        assert not isinstance(value, torch.Tensor) or value.device.type == "meta", field.name


@pytest.mark.real_data
def test_graphs_are_placed_on_the_gpu_only_while_they_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decision, with the device's free memory patched (no GPU here): sets go to the device in
    order while free memory less the margin covers them; the upload itself is replaced by a tag."""
    splits = load_splits(config(tmp_path, *CASES["CAN, learned IDs"]))
    train, val = splits.train, splits.val
    need = placement.resident_bytes(train), placement.resident_bytes(val)
    assert need[0] > int(train.node_ptr[-1]) * 4 * train.node_dim  # at least the node features
    monkeypatch.setattr(placement, "DeviceGraphs", lambda graphs, device: ("on", device, graphs))
    total = 80 << 30
    margin = max(placement.MARGIN_MIN_BYTES, int(placement.MARGIN_FRACTION * total))
    cuda = torch.device("cuda")

    def placed(free: int) -> list[bool]:
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free, total))
        return [isinstance(p, tuple) for p in place_on_device([train, val], cuda)]

    assert placed(margin + need[0] + need[1]) == [True, True]
    assert placed(margin + need[0] + need[1] - 1) == [True, False]
    assert placed(margin + need[0] - 1) == [False, need[1] <= need[0] - 1]  # the smaller one may still fit
    assert placed(margin - 1) == [False, False]
    # on the CPU nothing moves and nothing is asked of CUDA
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: pytest.fail("asked CUDA"))
    assert place_on_device([train, val], torch.device("cpu")) == [train, val]


MAP_MANY = """
import resource, sys
sys.path.insert(0, {repo!r})
from pathlib import Path
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, {hard}))
from kdgat.common.errors import DataError
from kdgat.data.cache import map_entry
held = []
try:
    for _ in range(200):
        held.append(map_entry(Path({entry!r})))
except DataError as err:
    print("refused:", err)
print("mapped", len(held), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""


@pytest.mark.real_data
def test_a_corpus_of_many_captures_maps_past_a_low_descriptor_limit(tmp_path: Path) -> None:
    """Each map holds a descriptor: the soft limit is raised to the hard one; where the hard one is
    too low, the run stops with what to do, and the entry (not at fault) is kept."""
    store_and_reference(config(tmp_path, *CASES["flows, edge labels"]))  # fills the cache
    entry = min((tmp_path / "cache" / "graphs").rglob("*.kdg"), key=lambda p: p.stat().st_size)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 1024:
        pytest.skip(f"this machine's hard limit on open files ({hard}) is too low for the test")
    for limit, expected in ((hard, "mapped 200"), (64, "refused: cannot memory-map cache entry")):
        script = MAP_MANY.format(repo=str(REPO), hard=limit, entry=str(entry))
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        assert expected in out.stdout, out.stdout
        assert "ulimit -n" in out.stdout or limit == hard
        assert entry.exists()
