"""Typed experiment configuration for kdgat.

An experiment is named by seven levels (modality, dataset, learning_type, model_architecture,
model_size, distillation, training_mode); the run number is claimed on disk when it starts.
Sub-configs hold the knobs. Every combination of levels is either valid or refused by
`check_levels` with what is wrong, why, and the valid alternatives.

This module imports nothing from kdgat: configuration flows one way, into the package.
"""

import dataclasses
import itertools
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import tyro
import yaml

# The one table of modalities and their datasets (a test holds it against kdgat.data's registry).
# internet: network flows as host graphs; watertreatment: hourly process logs on the plant graph.
MODALITY_DATASETS: dict[str, tuple[str, ...]] = {
    "automotive": ("synthetic", "hcrlch", "hcrlsa", "set01", "set02", "set03", "set04", "daga", "road"),
    "internet": ("synthetic", "stratosphere", "cicids2017"),
    "watertreatment": ("synthetic", "batadal"),
}
Modality = Literal[tuple(MODALITY_DATASETS)]  # type: ignore[valid-type]
Dataset = Literal[tuple(dict.fromkeys(d for names in MODALITY_DATASETS.values() for d in names))]  # type: ignore[valid-type]
LearningType = Literal["unsupervised", "classifier", "fusion"]
Architecture = Literal["VGAE", "GAT", "DQN"]
ModelSize = Literal["tiny", "student", "intermediate", "teacher", "huge"]
Distillation = Literal["no", "standard", "topology_preserving"]
TrainingMode = Literal["all_samples", "normals_only", "curriculum_classifier"]

LEVELS: tuple[str, ...] = (
    "modality",
    "dataset",
    "learning_type",
    "model_architecture",
    "model_size",
    "distillation",
    "training_mode",
)
LEVEL_CHOICES: dict[str, tuple[str, ...]] = {
    "modality": get_args(Modality),
    "dataset": get_args(Dataset),
    "learning_type": get_args(LearningType),
    "model_architecture": get_args(Architecture),
    "model_size": get_args(ModelSize),
    "distillation": get_args(Distillation),
    "training_mode": get_args(TrainingMode),
}
LEARNING_ARCHITECTURES: dict[str, tuple[str, ...]] = {
    "unsupervised": ("VGAE",),
    "classifier": ("GAT",),
    # DQN: decision-level fusion of VGAE and GAT; GAT: feature-level fusion over VGAE latents.
    "fusion": ("DQN", "GAT"),
}
STUDENT_SIDE_SIZES: tuple[str, ...] = ("tiny", "student", "intermediate")

# Documented model sizes. Any field can still be overridden with --model-size-config.<field>.
SIZE_TABLE: dict[str, dict[str, float | int]] = {
    "tiny": dict(hidden_dim=16, num_layers=2, heads=2, latent_dim=8, embedding_dim=4, dropout=0.1),
    "student": dict(hidden_dim=32, num_layers=2, heads=4, latent_dim=16, embedding_dim=8, dropout=0.1),
    "intermediate": dict(hidden_dim=64, num_layers=3, heads=4, latent_dim=32, embedding_dim=16, dropout=0.2),
    "teacher": dict(hidden_dim=128, num_layers=3, heads=8, latent_dim=48, embedding_dim=32, dropout=0.2),
    "huge": dict(hidden_dim=256, num_layers=4, heads=8, latent_dim=64, embedding_dim=64, dropout=0.3),
}


class ConfigError(ValueError):
    """A configuration the user can fix; the message says what, why and how."""


@dataclasses.dataclass(frozen=True)
class Range:
    """The values a numeric field may take, declared beside the field (`Annotated[int, AT_LEAST_1]`)
    and checked by resolve(); an unset (None) value is not checked."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def holds(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def describe(self, integer: bool) -> str:
        kind = "an integer" if integer else "a number"
        if self.high is None:
            return f"{kind} {'>' if self.low_open else '>='} {self.low:g}"
        if self.low is None:
            return f"{kind} {'<' if self.high_open else '<='} {self.high:g}"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"{kind} in {left}{self.low:g}, {self.high:g}{right}"


AT_LEAST_0 = Range(0)
AT_LEAST_1 = Range(1)
AT_LEAST_2 = Range(2)
POSITIVE = Range(0, low_open=True)
UNIT = Range(0, 1)
FRACTION = Range(0, 1, low_open=True, high_open=True)
PERCENT = Range(0, 100, low_open=True)


@dataclasses.dataclass
class ModelSizeConfig:
    """Width and depth. Fields left unset take the value of --model-size (see SIZE_TABLE)."""

    hidden_dim: Annotated[int | None, AT_LEAST_1] = None
    """Hidden channels (split evenly over the attention heads) (unset: from --model-size)."""
    num_layers: Annotated[int | None, AT_LEAST_1] = None
    """Number of message-passing layers (unset: from --model-size)."""
    heads: Annotated[int | None, AT_LEAST_1] = None
    """Attention heads per GAT layer (unset: from --model-size)."""
    latent_dim: Annotated[int | None, AT_LEAST_1] = None
    """VGAE latent dimension (unset: from --model-size)."""
    embedding_dim: Annotated[int | None, AT_LEAST_1] = None
    """Node-identity embedding dimension: CAN IDs, plant elements; hosts have no identity
    (unset: from --model-size)."""
    dropout: Annotated[float | None, Range(0, 1, high_open=True)] = None
    """Dropout probability in [0, 1) (unset: from --model-size)."""


@dataclasses.dataclass
class ModelConfig:
    """Architecture-specific knobs."""

    jk_mode: Literal["cat", "max", "lstm"] = "cat"
    """GAT jumping-knowledge aggregation over layer outputs."""
    pooling: Literal["mean", "max", "add", "mean_max"] = "mean_max"
    """Graph readout."""
    head_layers: Annotated[int, AT_LEAST_1] = 2
    """Layers of the MLP classification head."""
    use_edge_features: bool = True
    """Feed edge features (transition count and timing; flow statistics; edge kind) to GATv2
    attention."""
    logvar_clamp: Annotated[float, POSITIVE] = 10.0
    """VGAE: |logvar| bound, so exp(logvar) cannot overflow (fp16 especially)."""
    vgae_decoder: Literal["node", "graph"] = "node"
    """VGAE feature decoder input: 'node' = the node's own latent; 'graph' = the window's mean
    latent plus the node's identity embedding, a bottleneck over the whole window (suits fixed
    graphs such as a plant, where an element's reading is explained by the others': README's
    BATADAL recipe)."""
    edge_readout: bool = True
    """GAT on graphs whose edges carry labels (internet: flows aggregated per host pair): also
    classify every edge (MLP over both end nodes' embeddings and the edge features), so flows
    are scored, not only windows. Graphs without edge labels (CAN, process) have no edge head."""


@dataclasses.dataclass
class AutomotiveConfig:
    """CAN frames -> graphs: one graph per window of frames (read only with --modality automotive)."""

    window: Annotated[int, AT_LEAST_2] = 100
    """Frames per graph (W)."""
    stride: Annotated[int, AT_LEAST_1] = 100
    """Frames between the starts of consecutive windows (1..W)."""
    na_frames: Literal["drop", "error"] = "drop"
    """4-column rows with an `na` ID or payload (can-train-and-test set_02): 'drop' removes and
    counts them, 'error' treats them as malformed."""
    synthetic_train_frames: Annotated[int, AT_LEAST_1] = 120_000
    """Synthetic dataset: frames in the training logs."""
    synthetic_test_frames: Annotated[int, AT_LEAST_1] = 40_000
    """Synthetic dataset: frames in the test logs."""


@dataclasses.dataclass
class InternetConfig:
    """Network flows -> host graphs (read only with --modality internet).

    A window is a run of consecutive flows in time order: `window` flows, or `window_seconds`
    seconds of them. Nodes are hosts (never a learned identity), edges the flows between two
    hosts aggregated per direction."""

    window: Annotated[int, AT_LEAST_2] = 10
    """Flows per graph (when window_seconds is unset)."""
    stride: Annotated[int, AT_LEAST_1] = 10
    """Flows between the starts of consecutive windows (1..window)."""
    window_seconds: Annotated[float | None, POSITIVE] = None
    """Set: a window holds the flows that start within this many seconds (window and stride are
    then not used); windows without flows give no graph."""
    stride_seconds: Annotated[float | None, POSITIVE] = None
    """Seconds between the starts of consecutive time windows (unset: window_seconds)."""
    unlabelled: Literal["context", "benign", "drop"] = "context"
    """Flows that are neither attack nor verified benign (Stratosphere Background, Unknown):
    'context' keeps them in the graphs (a deployed detector sees them too) but scores them as
    neither class (a window of only such flows gives no graph; such edges are not scored);
    'benign' counts them as benign; 'drop' removes them before windowing."""
    synthetic_flows: Annotated[int, AT_LEAST_1] = 8_000
    """Synthetic dataset: flows in each of its captures."""


@dataclasses.dataclass
class WaterTreatmentConfig:
    """Hourly process logs -> one process graph per hour (read only with --modality watertreatment).

    A window of `window` hours slides by one hour and decides its last hour, as the BATADAL
    competition does. Nodes are the plant's monitored elements (tanks, pumps, valves, pressure
    junctions), edges come from its EPANET network model or from correlations."""

    window: Annotated[int, AT_LEAST_1] = 24
    """Hours per graph (W); the first W - 1 hours of each split are not decided."""
    split: Literal["auto", "competition", "dataset04_blocks"] = "auto"
    """'competition': BATADAL_dataset03 (attack-free) trains, BATADAL_dataset04_fully_labelled
    (attacks 1-7) validates, BATADAL_test_dataset_labelled (attacks 8-14) tests. 'dataset04_blocks':
    dataset03 and a training block of dataset04 train (with attacks, for models that learn from
    labels), a contiguous validation block of dataset04 (val_fraction, val_placement) validates;
    the same test. 'auto' (resolved into config.yaml): competition for unsupervised runs,
    dataset04_blocks for the others (a classifier cannot learn attacks from attack-free data)."""
    edges: Literal["network", "correlation", "both"] = "network"
    """'network': hydraulic paths, pump/valve end junctions and level controls from the plant's
    EPANET .inp beside the logs; 'correlation': node pairs whose main readings correlate on benign
    training hours only (plants with no model); 'both': the union."""
    correlation_threshold: Annotated[float, Range(0, 1, low_open=True)] = 0.8
    """|Pearson r| at or above which two nodes are linked (edges correlation or both)."""
    stats: tuple[Literal["last", "mean", "std", "min", "max", "delta", "last_minus_mean"], ...] = (
        "last",
        "mean",
        "std",
        "min",
        "max",
        "delta",
        "last_minus_mean",
    )
    """Window statistics of each reading that are node features; the others are written as 0, so
    the feature layout (and a model's input width) stays the same for every choice."""
    readings: Literal["standard", "raw"] = "standard"
    """'standard': every sensor column is z-scored by its mean and std over the benign training
    hours (dataset03, plus dataset04's training block under dataset04_blocks) before the window
    statistics, so a tank level (std ~1 m) weighs as much as a pump flow (std ~40 L/s) once the
    shared per-feature normalisation (one mean/std per feature over ALL nodes) runs; 'raw': the
    readings in their units (that normalisation then squashes tank levels into ~0.03 of a unit)."""
    reading_std_floor: Annotated[float, POSITIVE] = 0.1
    """'standard' readings: a column whose benign std is below this (in its own units: a pump that
    never runs in training, a status that almost never changes) is divided by it instead."""
    score_hours: Annotated[int, AT_LEAST_1] = 1
    """Hours of anomaly score behind each decision: an hour is decided on the mean model score of
    the decided hours of its log in the last score_hours hours (causal, so it runs online), for
    the validation threshold and the test alike. Averaging out one-hour noise costs up to
    score_hours - 1 hours of detection delay (BATADAL's S_TTD counts it). 1: each hour alone."""
    synthetic_train_hours: Annotated[int, AT_LEAST_1] = 2000
    """Synthetic plant: attack-free training hours."""
    synthetic_val_hours: Annotated[int, AT_LEAST_1] = 1000
    """Synthetic plant: validation hours (with attacks)."""
    synthetic_test_hours: Annotated[int, AT_LEAST_1] = 1000
    """Synthetic plant: test hours (with attacks)."""


MODALITY_CONFIGS: dict[str, str] = {
    "automotive": "automotive",
    "internet": "internet",
    "watertreatment": "watertreatment",
}
"""The DatasetConfig field holding each modality's own knobs."""
# Flat DatasetConfig fields of config.yaml files written before the modality sub-configs; they
# are moved into dataset_config.automotive on load (every such run was automotive).
_LEGACY_AUTOMOTIVE_FIELDS = (
    "window",
    "stride",
    "na_frames",
    "synthetic_train_frames",
    "synthetic_test_frames",
)


@dataclasses.dataclass
class DatasetConfig:
    """Where the data is, how it is split, and each modality's own knobs."""

    data_root: Annotated[Path | None, tyro.conf.arg(aliases=("--data-root",))] = None
    """Folder holding the dataset (e.g. train_*/ and test_*/ folders). Not used for 'synthetic'."""
    val_fraction: Annotated[float, FRACTION] = 0.2
    """Share of each training file used for validation, as one contiguous block (where: val_placement)."""
    val_placement: Literal["stratified", "end"] = "stratified"
    """Where each training file's contiguous validation block lies: 'end' = its last val_fraction;
    'stratified' = the val_fraction-sized block (on a grid) whose attack share is closest to the
    file's, so validation sees attacks even when a capture's attacks all lie early. Training keeps
    the records before and after it; no window crosses either boundary."""
    test_dirs: tuple[str, ...] = ("test_*",)
    """Glob patterns of test folders under data_root; each is also scored on its own."""
    normalisation: Literal["standard", "none"] = "standard"
    """Node/edge feature scaling, fitted on benign training windows only."""
    cache_dir: Path = Path(".cache/kdgat")
    """Where generated synthetic data and the preprocessed-graph cache (cache_dir/graphs) live."""
    synthetic_seed: Annotated[int, AT_LEAST_0] = 7
    """Synthetic dataset: generator seed (the data, not the model)."""
    test_fraction: Annotated[float, FRACTION] = 0.2
    """Datasets without test_* folders (daga, road, flat hcrl_ch, internet captures): share of
    each file, taken from its end, used for testing (validation lies before it)."""
    malformed: Literal["error", "skip"] = "error"
    """A malformed row: 'error' stops with file:line and what was expected; 'skip' drops it and
    counts it (metrics.json data.skipped_rows)."""
    cache: bool = True
    """Cache preprocessed graphs under cache_dir/graphs, keyed by file contents, graph
    parameters and a format version; a second run starts in seconds."""
    automotive: AutomotiveConfig = dataclasses.field(default_factory=AutomotiveConfig)
    internet: InternetConfig = dataclasses.field(default_factory=InternetConfig)
    watertreatment: WaterTreatmentConfig = dataclasses.field(default_factory=WaterTreatmentConfig)


@dataclasses.dataclass
class DistillationConfig:
    """Knowledge distillation: how a student learns from its frozen teacher (--distillation)."""

    temperature: Annotated[float, POSITIVE] = 4.0
    """Softmax temperature T of the soft targets (class logits, ID logits, DQN Q-values)."""
    alpha: Annotated[float, UNIT] = 0.7
    """Weight of the distillation term against the student's own loss: (1 - a) own + a KD."""
    latent_weight: Annotated[float, AT_LEAST_0] = 1.0
    """VGAE: weight of matching the teacher's latent means (through a learned projection)."""
    reconstruction_weight: Annotated[float, AT_LEAST_0] = 1.0
    """VGAE: weight of matching the teacher's reconstructions (features, ID, neighbours)."""
    lsp_weight: Annotated[float, AT_LEAST_0] = 1.0
    """topology_preserving: weight of local-structure matching (per-node neighbour similarity, LSP)."""
    lsp_temperature: Annotated[float, POSITIVE] = 0.1
    """topology_preserving: kernel bandwidth of the neighbour similarities (cosine / temperature)."""
    relational_weight: Annotated[float, AT_LEAST_0] = 1.0
    """topology_preserving: weight of matching pairwise distances between graph embeddings in a batch."""


@dataclasses.dataclass
class VGAELossConfig:
    """The VGAE's loss and anomaly score: per node, the weighted sum of its reconstruction errors."""

    feature_weight: Annotated[float, AT_LEAST_0] = 1.0
    """Weight of node-feature reconstruction (MSE)."""
    id_weight: Annotated[float, AT_LEAST_0] = 1.0
    """Weight of node-identity reconstruction (cross-entropy over the vocabulary: CAN IDs)."""
    neighbour_weight: Annotated[float, AT_LEAST_0] = 1.0
    """Weight of neighbourhood reconstruction (multi-hot BCE over the vocabulary)."""
    kl_weight: Annotated[float, AT_LEAST_0] = 0.01
    """KL weight (beta) of the loss (not part of the anomaly score)."""
    score_pooling: Literal["mean_max", "mean"] = "mean_max"
    """How a graph's anomaly score pools its nodes' errors: 'mean_max' = mean + max, so one odd
    node in an otherwise normal window still counts (a CAN ID out of place); 'mean' = the mean,
    for graphs whose attacks shift many nodes a little and whose benign windows always hold
    some noisy node (a plant: the max then mostly adds noise)."""


@dataclasses.dataclass
class CurriculumConfig:
    """training_mode curriculum_classifier: each epoch all attack graphs plus benign graphs drawn from
    the easiest percentile by the VGAE's anomaly score, both rising over the ramp."""

    start_percentile: Annotated[float, PERCENT] = 50.0
    """At the first epoch benign graphs come from the easiest this-many percent."""
    end_percentile: Annotated[float, PERCENT] = 100.0
    """Percentile of VGAE difficulty reached at the last ramp epoch."""
    start_ratio: Annotated[float, POSITIVE] = 1.0
    """Benign graphs per attack graph at the first epoch."""
    end_ratio: Annotated[float, POSITIVE] = 4.0
    """Benign graphs per attack graph at the last ramp epoch."""
    ramp_epochs: Annotated[int, AT_LEAST_0] = 0
    """Epochs over which both rise (0 = all epochs)."""


@dataclasses.dataclass
class DQNConfig:
    """DQN fusion: an agent picks, per window, the weight alpha of the GAT against the VGAE."""

    fit_on: Literal["validation", "train"] = "validation"
    """Learn from base-model outputs on held-out validation graphs (halved in alternating blocks:
    learn / select), or on training graphs (where the GAT is overconfident)."""
    actions: Annotated[int, AT_LEAST_2] = 11
    """Number of fusion weights alpha, evenly spaced in [0, 1]."""
    gamma: Annotated[float, Range(0, 1, high_open=True)] = 0.3
    """Discount over the next window of an episode."""
    episode_length: Annotated[int, AT_LEAST_1] = 32
    """Consecutive training windows per episode."""
    epsilon_start: Annotated[float, UNIT] = 1.0
    """Initial exploration rate."""
    epsilon_end: Annotated[float, UNIT] = 0.05
    """Final exploration rate (at most epsilon_start)."""
    epsilon_decay_steps: Annotated[int, AT_LEAST_1] = 3000
    """Agent steps over which epsilon decays linearly."""
    buffer_size: Annotated[int, AT_LEAST_1] = 20000
    """Replay-buffer capacity (transitions; at least batch_size)."""
    batch_size: Annotated[int, AT_LEAST_1] = 128
    """Transitions per gradient step."""
    target_update: Annotated[int, AT_LEAST_1] = 200
    """Gradient steps between target-network copies."""
    vgae_sharpness: Annotated[float, POSITIVE] = 4.0
    """Slope mapping log(VGAE score / threshold) to a probability."""
    fixed_alpha: Annotated[float, UNIT] = 0.5
    """Baseline reported beside the agent: a fixed weight of the GAT probability."""


@dataclasses.dataclass
class LearningConfig:
    """What is learnt and how it is weighted, one sub-config per concern."""

    class_weighting: Literal["balanced", "none"] = "balanced"
    """Weight the classifier loss by inverse class frequency of the training split."""
    edge_loss_weight: Annotated[float, AT_LEAST_0] = 1.0
    """GAT with an edge read-out: weight of the (class-weighted) edge cross-entropy beside the
    window's."""
    kd: DistillationConfig = dataclasses.field(default_factory=DistillationConfig)
    vgae: VGAELossConfig = dataclasses.field(default_factory=VGAELossConfig)
    curriculum: CurriculumConfig = dataclasses.field(default_factory=CurriculumConfig)
    dqn: DQNConfig = dataclasses.field(default_factory=DQNConfig)


@dataclasses.dataclass
class TrainingConfig:
    """The optimisation loop (graph models and the DQN agent alike)."""

    epochs: Annotated[int, AT_LEAST_1] = 8
    """Maximum number of epochs."""
    batch_size: Annotated[int, AT_LEAST_1] = 64
    """Graphs per batch."""
    lr: Annotated[float, POSITIVE] = 3e-3
    """Learning rate."""
    weight_decay: Annotated[float, AT_LEAST_0] = 1e-4
    """Weight decay."""
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    """Optimizer."""
    scheduler: Literal["cosine", "none"] = "cosine"
    """Learning-rate schedule over the epochs."""
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"
    """Mixed precision: auto = fp16 + GradScaler on CUDA and off on CPU; bf16 = bf16 autocast."""
    grad_clip: Annotated[float, AT_LEAST_0] = 1.0
    """Max global gradient norm (0 disables clipping)."""
    patience: Annotated[int, AT_LEAST_1] = 4
    """Epochs without validation improvement before stopping early."""
    seed: Annotated[int, AT_LEAST_0] = 0
    """Seed for model initialisation, data order and dropout."""
    torch_threads: Annotated[int, AT_LEAST_0] = 0
    """CPU threads torch may use for training (0 = torch's default, one per core)."""


@dataclasses.dataclass
class OscConfig:
    """Slurm / Ohio Supercomputer Center job parameters (used by launch.py)."""

    account: str | None = None
    """Slurm account, e.g. PAS1234."""
    cluster: str | None = None
    """OSC cluster (pitzer, ascend, cardinal)."""
    partition: str | None = None
    """Slurm partition."""
    gpus_per_node: Annotated[int, AT_LEAST_0] = 0
    """GPUs per job."""
    cpus_per_task: Annotated[int, AT_LEAST_1] = 2
    """CPU cores per task."""
    mem_gb: Annotated[int, AT_LEAST_1] = 8
    """Memory per job in GiB."""
    time_min: Annotated[int, AT_LEAST_1] = 60
    """Wall-time limit in minutes."""
    mail_type: str | None = None
    """Slurm --mail-type, e.g. END,FAIL."""
    mail_user: str | None = None
    """Mail address for Slurm notifications."""
    qos: str | None = None
    """Slurm quality of service."""
    constraint: str | None = None
    """Slurm node constraint."""
    setup: tuple[str, ...] = ()
    """Shell lines run before the job (module load, venv activation)."""


@dataclasses.dataclass
class ExperimentConfig:
    """One kdgat experiment: seven levels name it, sub-configs hold its knobs."""

    modality: Modality = "automotive"
    """Kind of traffic turned into graphs."""
    dataset: Dataset = "synthetic"
    """Dataset of that modality ('synthetic' is generated, no download)."""
    learning_type: LearningType = "classifier"
    """unsupervised (VGAE), classifier (GAT) or fusion (DQN / GAT over VGAE outputs)."""
    model_architecture: Architecture = "GAT"
    """Model family."""
    model_size: ModelSize = "student"
    """Size preset, see SIZE_TABLE in configs.py."""
    distillation: Distillation = "no"
    """Knowledge distillation from a finished teacher run."""
    training_mode: TrainingMode = "all_samples"
    """Which graphs are trained on."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """auto = cuda when available, else cpu."""
    runs_root: Path = Path("runs")
    """Root of the run tree."""
    teacher_run: Path | None = None
    """Explicit teacher run directory for distillation (default: latest finished teacher)."""
    vgae_run: Path | None = None
    """Explicit VGAE run for curriculum / fusion (default: latest finished one, same dataset)."""
    gat_run: Path | None = None
    """Explicit GAT classifier run for DQN fusion (default: latest finished one, same dataset)."""
    model_size_config: ModelSizeConfig = dataclasses.field(default_factory=ModelSizeConfig)
    model_config: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    dataset_config: DatasetConfig = dataclasses.field(default_factory=DatasetConfig)
    learning_config: LearningConfig = dataclasses.field(default_factory=LearningConfig)
    training_config: Annotated[TrainingConfig, tyro.conf.arg(name="training")] = dataclasses.field(
        default_factory=TrainingConfig
    )
    osc_config: OscConfig = dataclasses.field(default_factory=OscConfig)


# ---------------------------------------------------------------- levels and compatibility


def check_levels(levels: dict[str, str]) -> None:
    """Raise ConfigError if this combination of the seven levels cannot run, saying why."""
    for level in LEVELS:
        if levels[level] not in LEVEL_CHOICES[level]:
            raise ConfigError(
                f"{level}={levels[level]!r} is not a known value. "
                f"Choose one of: {', '.join(LEVEL_CHOICES[level])}."
            )
    modality, dataset = levels["modality"], levels["dataset"]
    learning, arch = levels["learning_type"], levels["model_architecture"]
    size, distill, mode = levels["model_size"], levels["distillation"], levels["training_mode"]
    datasets = MODALITY_DATASETS[modality]
    if dataset not in datasets:
        owners = [m for m, names in MODALITY_DATASETS.items() if dataset in names]
        raise ConfigError(
            f"dataset={dataset!r} does not belong to modality={modality!r}. "
            + (f"Use --modality {' or '.join(owners)} for it, or c" if owners else "C")
            + f"hoose a dataset of {modality}: {', '.join(datasets)}."
        )
    if arch not in LEARNING_ARCHITECTURES[learning]:
        fit = [k for k, v in LEARNING_ARCHITECTURES.items() if arch in v]
        why = {
            "unsupervised": "unsupervised learning needs a reconstruction model",
            "classifier": "the classifier is a supervised GAT (a reinforcement-learning DQN "
            "classifier is not built)",
            "fusion": "fusion combines VGAE and GAT outputs with a DQN agent or a fusion GAT",
        }[learning]
        raise ConfigError(
            f"model_architecture={arch!r} cannot do learning_type={learning!r}: {why}. "
            f"Use --model-architecture {' or '.join(LEARNING_ARCHITECTURES[learning])}"
            + (f", or --learning-type {' or '.join(fit)} with {arch}." if fit else ".")
        )
    if mode == "normals_only" and learning != "unsupervised":
        raise ConfigError(
            f"training_mode='normals_only' with learning_type={learning!r}: training on benign "
            f"graphs only leaves a supervised model with one class. Use --training-mode "
            f"all_samples{' or curriculum_classifier' if arch == 'GAT' else ''}, or "
            f"--learning-type unsupervised --model-architecture VGAE."
        )
    if mode == "curriculum_classifier" and arch != "GAT":
        raise ConfigError(
            f"training_mode='curriculum_classifier' with model_architecture={arch!r}: the "
            f"curriculum orders graphs for a GAT classifier by VGAE difficulty. Use --training-mode "
            f"{'all_samples or normals_only' if learning == 'unsupervised' else 'all_samples'}."
        )
    if distill != "no" and size not in STUDENT_SIDE_SIZES:
        raise ConfigError(
            f"distillation={distill!r} with model_size={size!r}: distillation trains a smaller "
            f"student from a teacher-size model. Use --model-size {' / '.join(STUDENT_SIDE_SIZES)}, "
            f"or --distillation no."
        )
    if distill == "topology_preserving" and arch == "DQN":
        raise ConfigError(
            "distillation='topology_preserving' with model_architecture='DQN': it matches the "
            "teacher's node neighbourhoods and graph-embedding geometry, and the DQN agent sees one "
            "state vector per window, no graph. Use --distillation standard (Q-value matching) for "
            "the DQN, or topology_preserving with --model-architecture GAT or VGAE."
        )


def levels_of(cfg: ExperimentConfig) -> dict[str, str]:
    return {level: getattr(cfg, level) for level in LEVELS}


def preset_name(cfg: ExperimentConfig) -> str:
    """`{modality}_{dataset}_{learning_type}_{arch}_{size}_{distillation}_{training_mode}`."""
    return "_".join(str(v).lower() for v in levels_of(cfg).values())


def parse_preset(name: str) -> dict[str, str]:
    """Split a preset name into its seven levels (values may themselves contain '_')."""

    def match(rest: str, levels: tuple[str, ...]) -> list[str] | None:
        if not levels:
            return [] if rest == "" else None
        for value in LEVEL_CHOICES[levels[0]]:
            token = value.lower()
            if rest == token and len(levels) == 1:
                return [value]
            if rest.startswith(token + "_"):
                tail = match(rest[len(token) + 1 :], levels[1:])
                if tail is not None:
                    return [value, *tail]
        return None

    found = match(name.lower(), LEVELS)
    if found is None:
        raise ConfigError(
            f"preset {name!r} is not of the form "
            "{modality}_{dataset}_{learning_type}_{arch}_{size}_{distillation}_{training_mode}, "
            f"e.g. automotive_hcrlsa_classifier_gat_student_no_all_samples. "
            f"`python train.py --list-presets` prints every valid name."
        )
    return dict(zip(LEVELS, found, strict=True))


def config_from_preset(name: str, base: ExperimentConfig | None = None) -> ExperimentConfig:
    levels = parse_preset(name)
    check_levels(levels)
    return dataclasses.replace(base or ExperimentConfig(), **levels)


def all_level_combinations() -> list[dict[str, str]]:
    return [
        dict(zip(LEVELS, combo, strict=True))
        for combo in itertools.product(*(LEVEL_CHOICES[level] for level in LEVELS))
    ]


def valid_presets() -> list[str]:
    """Every preset name whose levels pass the compatibility rules."""
    names = []
    for levels in all_level_combinations():
        try:
            check_levels(levels)
        except ConfigError:
            continue
        names.append("_".join(v.lower() for v in levels.values()))
    return names


# ---------------------------------------------------------------- resolution and ranges


def resolve(cfg: ExperimentConfig) -> ExperimentConfig:
    """Check levels and ranges; fill size-derived fields. Returns a new, complete config."""
    check_levels(levels_of(cfg))
    sizes = dataclasses.asdict(cfg.model_size_config)
    for key, value in SIZE_TABLE[cfg.model_size].items():
        if sizes[key] is None:
            sizes[key] = value
    cfg = dataclasses.replace(cfg, model_size_config=ModelSizeConfig(**sizes))
    cfg = _resolve_water_split(cfg)
    _check_other_modality_knobs(cfg)
    _check_ranges(cfg)
    return cfg


def _resolve_water_split(cfg: ExperimentConfig) -> ExperimentConfig:
    """watertreatment split 'auto' -> the split this learning type can learn from; a supervised
    run on the attack-free competition training file is refused."""
    if cfg.modality != "watertreatment":
        return cfg
    w = cfg.dataset_config.watertreatment
    supervised = cfg.learning_type != "unsupervised"
    if w.split == "competition" and supervised:
        raise ConfigError(
            f"--dataset-config.watertreatment.split competition trains on BATADAL_dataset03, which has "
            f"no attacks, so learning_type={cfg.learning_type!r} ({cfg.model_architecture}) would never "
            f"see one. Use --dataset-config.watertreatment.split dataset04_blocks (or auto), or "
            f"--learning-type unsupervised --model-architecture VGAE."
        )
    if w.split != "auto":
        return cfg
    split = "dataset04_blocks" if supervised else "competition"
    water = dataclasses.replace(w, split=split)
    dataset = dataclasses.replace(cfg.dataset_config, watertreatment=water)
    return dataclasses.replace(cfg, dataset_config=dataset)


def _check_other_modality_knobs(cfg: ExperimentConfig) -> None:
    """A knob of another modality's sub-config would be ignored: refuse it instead."""
    d = cfg.dataset_config
    for modality, field in MODALITY_CONFIGS.items():
        if modality == cfg.modality:
            continue
        given, default = getattr(d, field), type(getattr(d, field))()
        changed = [
            f.name for f in dataclasses.fields(given) if getattr(given, f.name) != getattr(default, f.name)
        ]
        if changed:
            flags = ", ".join(f"--dataset-config.{field}.{name.replace('_', '-')}" for name in changed)
            raise ConfigError(
                f"{flags} belong(s) to modality {modality!r}, but --modality is {cfg.modality!r}: "
                f"they would be ignored. Drop them, or use --modality {modality}."
            )


def _flag(path: tuple[str, ...]) -> str:
    """('training_config', 'lr') -> '--training.lr' (tyro's name for that section)."""
    section = "training" if path[0] == "training_config" else path[0]
    return "--" + ".".join(part.replace("_", "-") for part in (section, *path[1:]))


def _check_fields(value: Any, path: tuple[str, ...] = ()) -> None:
    """Every field against the Range declared beside it, walking the sub-configs."""
    hints = typing.get_type_hints(type(value), include_extras=True)
    for field in dataclasses.fields(value):
        item = getattr(value, field.name)
        if dataclasses.is_dataclass(item):
            _check_fields(item, (*path, field.name))
            continue
        for rule in getattr(hints[field.name], "__metadata__", ()):
            if isinstance(rule, Range) and item is not None and not rule.holds(item):
                raise ConfigError(
                    f"{_flag((*path, field.name))} {item!r} is out of range: expected "
                    f"{rule.describe(isinstance(item, int))}."
                )


def _relations(cfg: ExperimentConfig) -> list[tuple[bool, str, Any, str]]:
    """Rules between fields: (holds, flag, value, what is expected)."""
    d, lc = cfg.dataset_config, cfg.learning_config
    rules: list[tuple[bool, str, Any, str]] = [
        (len(d.test_dirs) >= 1, "--dataset-config.test-dirs", d.test_dirs, "at least one folder pattern"),
        (
            d.val_fraction + d.test_fraction < 1,
            "--dataset-config.test-fraction",
            d.test_fraction,
            f"a number below 1 - val_fraction ({1 - d.val_fraction:g})",
        ),
        (
            lc.dqn.epsilon_end <= lc.dqn.epsilon_start,
            "--learning-config.dqn.epsilon-end",
            lc.dqn.epsilon_end,
            f"at most --learning-config.dqn.epsilon-start ({lc.dqn.epsilon_start:g})",
        ),
        (
            lc.dqn.buffer_size >= lc.dqn.batch_size,
            "--learning-config.dqn.buffer-size",
            lc.dqn.buffer_size,
            f"at least --learning-config.dqn.batch-size ({lc.dqn.batch_size})",
        ),
    ]
    if cfg.modality == "automotive":
        a, flag = d.automotive, "--dataset-config.automotive"
        rules += [
            (a.stride <= a.window, f"{flag}.stride", a.stride, f"an integer in 1..window ({a.window})"),
            (
                a.synthetic_train_frames >= 10 * a.window,
                f"{flag}.synthetic-train-frames",
                a.synthetic_train_frames,
                "at least 10 windows of frames",
            ),
            (
                a.synthetic_test_frames >= 2 * a.window,
                f"{flag}.synthetic-test-frames",
                a.synthetic_test_frames,
                "at least 2 windows of frames",
            ),
        ]
    elif cfg.modality == "internet":
        n, flag = d.internet, "--dataset-config.internet"
        rules += [
            (n.stride <= n.window, f"{flag}.stride", n.stride, f"an integer in 1..window ({n.window})"),
            (
                n.synthetic_flows >= 20 * n.window,
                f"{flag}.synthetic-flows",
                n.synthetic_flows,
                "at least 20 windows of flows",
            ),
        ]
        if n.window_seconds is None:
            rules.append(
                (
                    n.stride_seconds is None,
                    f"{flag}.stride-seconds",
                    n.stride_seconds,
                    "unset unless --dataset-config.internet.window-seconds is set (windows of flows)",
                )
            )
        elif n.stride_seconds is not None:
            rules.append(
                (
                    n.stride_seconds <= n.window_seconds,
                    f"{flag}.stride-seconds",
                    n.stride_seconds,
                    f"a number in (0, window_seconds ({n.window_seconds:g})]",
                )
            )
    else:
        w, flag = d.watertreatment, "--dataset-config.watertreatment"
        rules.append(
            (
                w.synthetic_train_hours >= max(48, 2 * w.window),
                f"{flag}.synthetic-train-hours",
                w.synthetic_train_hours,
                f"at least {max(48, 2 * w.window)} hours",
            )
        )
        rules.append((len(w.stats) > 0, f"{flag}.stats", w.stats, "at least one window statistic"))
        for name, hours in (("val", w.synthetic_val_hours), ("test", w.synthetic_test_hours)):
            need = max(168, 4 * w.window)
            rules.append((hours >= need, f"{flag}.synthetic-{name}-hours", hours, f"at least {need} hours"))
    return rules


def _check_ranges(cfg: ExperimentConfig) -> None:
    _check_fields(cfg)
    for holds, flag, value, expected in _relations(cfg):
        if not holds:
            raise ConfigError(f"{flag} {value!r} is out of range: expected {expected}.")
    s, t = cfg.model_size_config, cfg.training_config
    if t.amp == "fp16" and cfg.device == "cpu":
        raise ConfigError(
            "--training.amp fp16 needs CUDA (fp16 autocast with GradScaler); on CPU use "
            "--training.amp bf16 or off."
        )
    if s.hidden_dim % s.heads:
        raise ConfigError(
            f"--model-size-config.hidden-dim {s.hidden_dim} is not divisible by "
            f"--model-size-config.heads {s.heads}: GAT heads split the hidden width evenly. "
            f"Pick a hidden_dim that is a multiple of {s.heads}."
        )
    if t.amp == "fp16" and cfg.model_architecture == "DQN":
        raise ConfigError(
            "--training.amp fp16 needs CUDA, and the DQN agent trains on the CPU (an MLP over ~11 "
            "numbers per window gains nothing from a GPU). Use --training.amp bf16 (CPU autocast), "
            "off, or auto (fp16 for the graph stages on CUDA, off for the DQN)."
        )


# ---------------------------------------------------------------- YAML round trip


def to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(cfg))


def to_yaml(cfg: ExperimentConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if origin is Annotated:
        return _convert(get_args(tp)[0], value, where)
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(str, get_args(tp)))}.")
        return value
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{where}: {value!r} has the wrong type.")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}.")
        return tuple(_convert(get_args(tp)[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of {tp.__name__} fields, got {value!r}.")
        return _from_dict(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}.")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}.")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}.")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}.")
        return value
    if tp is Path:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a path string, got {value!r}.")
        return Path(value)
    raise ConfigError(f"{where}: unsupported field type {tp!r}.")


def _from_dict(cls: type, data: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls, include_extras=True)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{where}: unknown field(s) {', '.join(unknown)}. Known fields: {', '.join(sorted(names))}."
        )
    return cls(**{k: _convert(hints[k], v, f"{where}.{k}") for k, v in data.items()})


# config.yaml layouts of earlier versions -> today's, field by field (nothing else changes), so old
# run directories keep loading, rerunning and resuming.
_LEGACY_SECTIONS = {
    "learning_config": {"kd_": "kd", "vgae_": "vgae", "curriculum_": "curriculum", "dqn_": "dqn"},
}
_LEGACY_RENAMES = {
    ("learning_config", "fixed_alpha"): ("learning_config", "dqn", "fixed_alpha"),
    ("training_config", "num_workers"): ("training_config", "torch_threads"),
}


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """A config mapping in today's layout. Before 2026-12: the CAN knobs sat flat in dataset_config
    (now dataset_config.automotive), the learning knobs flat with prefixes in learning_config
    (kd_alpha -> learning_config.kd.alpha, dqn_*, vgae_*, curriculum_*; fixed_alpha -> dqn), and
    training_config.num_workers is torch_threads."""
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    dataset = data.get("dataset_config")
    if isinstance(dataset, dict) and any(k in dataset for k in _LEGACY_AUTOMOTIVE_FIELDS):
        automotive = dict(dataset.get("automotive") or {})
        for key in _LEGACY_AUTOMOTIVE_FIELDS:
            if key in dataset:
                automotive[key] = dataset.pop(key)
        dataset["automotive"] = automotive
    for (section, old), (*parents, leaf) in _LEGACY_RENAMES.items():
        if isinstance(data.get(section), dict) and old in data[section]:
            node = data
            for part in parents:
                node[part] = node = dict(node.get(part) or {})
            node[leaf] = data[section].pop(old)
    for section, prefixes in _LEGACY_SECTIONS.items():
        fields = data.get(section)
        if not isinstance(fields, dict):
            continue
        for key in list(fields):
            for prefix, sub in prefixes.items():
                if key.startswith(prefix):
                    fields[sub] = {**(fields.get(sub) or {}), key.removeprefix(prefix): fields.pop(key)}
                    break
    return data


def from_dict(data: dict[str, Any], source: str = "config") -> ExperimentConfig:
    """Build a config from a mapping, rejecting unknown fields and wrong types (older layouts of
    config.yaml are migrated first, so old run directories keep loading)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of config fields, got {type(data).__name__}.")
    return _from_dict(ExperimentConfig, migrate(data), source)


def load_yaml(path: Path) -> ExperimentConfig:
    """Read a saved config.yaml; every problem names the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"config file {path} does not exist. Pass the config.yaml of a run directory, e.g. "
            f"--config runs/automotive/synthetic/.../run_000/config.yaml."
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    return from_dict(data, source=str(path))
