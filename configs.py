"""Typed experiment configuration for kdgat.

An experiment is named by seven levels (modality, dataset, learning_type, model_architecture,
model_size, distillation, training_mode); the run number is claimed on disk when it starts.
Sub-configs hold the knobs. Every combination of levels is either valid or refused by
`check_levels` (kdgat/config/levels.py) with what is wrong, why, and the valid alternatives.

This module imports nothing from kdgat: configuration flows one way, into the package. The
functions over this schema (resolving and checks, preset names, the YAML codec, migrations of old
config.yaml files) live in kdgat/config/; import them from there.
"""

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, get_args

import tyro

# The one table of modalities and their datasets (a test holds it against kdgat.data's registry).
# internet: network flows as host graphs; watertreatment: hourly process logs on the plant graph.
MODALITY_DATASETS: dict[str, tuple[str, ...]] = {
    "automotive": ("synthetic", "hcrlch", "hcrlsa", "set01", "set02", "set03", "set04", "daga", "road"),
    "internet": ("synthetic", "stratosphere", "cicids2017", "dapt2020"),
    "watertreatment": ("synthetic", "batadal"),
}
if TYPE_CHECKING:  # these Literals are built at run time (tyro's choices): a type checker sees str
    Modality = str
    Dataset = str
else:
    Modality = Literal[tuple(MODALITY_DATASETS)]
    Dataset = Literal[tuple(dict.fromkeys(d for names in MODALITY_DATASETS.values() for d in names))]
LearningType = Literal["unsupervised", "classifier", "fusion"]


@dataclasses.dataclass(frozen=True)
class ArchitectureSpec:
    """A row of ARCHITECTURES (docs/architecture.md: Adding an architecture)."""

    learning_types: tuple[str, ...]  # the learning types it serves
    builder: str  # "module:function" (cfg, input_dims) -> torch module, imported when a model is built
    edge_readout: bool = False  # on graphs whose edges carry labels, also classifies every edge (flows)
    curriculum: bool = False  # may train with --training-mode curriculum_classifier
    teachers: tuple[str, ...] = ()  # architectures whose runs may teach it, the most preferred first
    topology: bool = True  # topology_preserving distillation applies (it has node embeddings)
    no_export: str = ""  # why export refuses its runs; "" = they export


# The one table of architectures; the level rules, model factory, teacher lookup, export gate and tests
# derive from it. Fusion: GAT/SAGE over VGAE outputs, the DQN weighs GAT against VGAE per window.
# fmt: off
ARCHITECTURES: dict[str, ArchitectureSpec] = {
    "VGAE": ArchitectureSpec(("unsupervised",), "kdgat.models:build_vgae", teachers=("VGAE",)),
    "GAT": ArchitectureSpec(("classifier", "fusion"), "kdgat.models:build_gat", edge_readout=True,
                            curriculum=True, teachers=("GAT",)),
    "DQN": ArchitectureSpec(("fusion",), "kdgat.models:build_dqn", teachers=("DQN",), topology=False,
                            no_export="it decides from VGAE and GAT statistics no exported graph computes"),
    "SAGE": ArchitectureSpec(("classifier", "fusion"), "kdgat.models.sage:build_sage", edge_readout=True,
                             curriculum=True, teachers=("GAT", "SAGE"),
                             no_export="the exporters (kdgat/deploy) rewrite GATv2 and VGAE layers only"),
}
# fmt: on
if TYPE_CHECKING:  # as Modality
    Architecture = str
else:
    Architecture = Literal[tuple(ARCHITECTURES)]
ModelSize = Literal["tiny", "student", "intermediate", "teacher", "huge"]
Distillation = Literal["no", "standard", "topology_preserving"]
TrainingMode = Literal["all_samples", "normals_only", "curriculum_classifier"]
ThresholdMethod = Literal["auto", "fixed", "best_f1", "target_fpr"]
CalibrationThreshold = Literal["auto", "keep", "max", "quantile"]

LEVEL_CHOICES: dict[str, tuple[str, ...]] = {
    "modality": get_args(Modality),
    "dataset": get_args(Dataset),
    "learning_type": get_args(LearningType),
    "model_architecture": get_args(Architecture),
    "model_size": get_args(ModelSize),
    "distillation": get_args(Distillation),
    "training_mode": get_args(TrainingMode),
}
LEVELS: tuple[str, ...] = tuple(LEVEL_CHOICES)  # in naming order: run directories and preset names
LEARNING_ARCHITECTURES: dict[str, tuple[str, ...]] = {
    learning: tuple(a for a, spec in ARCHITECTURES.items() if learning in spec.learning_types)
    for learning in get_args(LearningType)
}
STUDENT_SIDE_SIZES: tuple[str, ...] = ("tiny", "student", "intermediate")
ARCHITECTURE_HELP = "Model family (ARCHITECTURES; docs/architecture.md): " + ", ".join(
    f"{a} ({'/'.join(s.learning_types)}{'; edge read-out' * s.edge_readout}{'; curriculum' * s.curriculum})"
    for a, s in ARCHITECTURES.items()
)

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
    and checked by kdgat.config.resolve (in_range, describe_range); an unset (None) value is not checked."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False


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
    """Node-identity embedding dimension: CAN IDs, plant elements; hosts have no identity."""
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
    """Feed edge features (transition timing; flow statistics; edge kind) to GATv2 attention."""
    logvar_clamp: Annotated[float, POSITIVE] = 10.0
    """VGAE: |logvar| bound, so exp(logvar) cannot overflow (fp16 especially)."""
    vgae_decoder: Literal["node", "graph"] = "node"
    """VGAE feature decoder input: 'node' = the node's own latent; 'graph' = the window's mean
    latent plus the node's identity embedding (a plant, whose readings explain each other)."""
    edge_readout: bool = True
    """GAT on graphs whose edges carry labels (internet flows per host pair): also classify every
    edge (MLP over its end nodes and features), so flows are scored, not only windows."""


@dataclasses.dataclass
class AutomotiveConfig:
    """CAN frames -> graphs: one graph per window of frames (read only with --modality automotive)."""

    window: Annotated[int, AT_LEAST_2] = 100
    """Frames per graph (W)."""
    stride: Annotated[int, AT_LEAST_1] = 100
    """Frames between the starts of consecutive windows (1..W)."""
    na_frames: Literal["drop", "error"] = "drop"
    """4-column rows with an `na` ID or payload (set_02): 'drop' removes and counts, 'error' refuses."""
    features: Literal["default", "agnostic"] = "default"
    """'default': IDs by identity (embedding, is_unknown_id); 'agnostic': by behaviour in the window."""
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


WindowStat = Literal["last", "mean", "std", "min", "max", "delta", "last_minus_mean"]


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
    stats: tuple[WindowStat, ...] = get_args(WindowStat)
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


@dataclasses.dataclass
class DatasetConfig:
    """Where the data is, how it is split, and each modality's own knobs."""

    data_root: Annotated[Path | None, tyro.conf.arg(aliases=("--data-root",))] = None
    """Folder holding the dataset (e.g. train_*/ and test_*/ folders). Not used for 'synthetic'."""
    val_fraction: Annotated[float, FRACTION] = 0.2
    """Share of each training file used for validation, as one contiguous block (where: val_placement)."""
    val_placement: Literal["stratified", "end"] = "stratified"
    """Where each training file's validation block lies: 'end' = its last val_fraction; 'stratified'
    = the block (on a grid) whose attack share is closest to the file's, so validation sees attacks
    even when they all lie early. No window crosses either boundary."""
    test_dirs: tuple[str, ...] = ("test_*",)
    """Glob patterns of test folders under data_root; each is also scored on its own."""
    normalisation: Literal["standard", "none"] = "standard"
    """Node/edge feature scaling, fitted on benign training windows only."""
    cache_dir: Path = Path(".cache/kdgat")
    """Where generated synthetic data and the preprocessed-graph cache (cache_dir/graphs) live."""
    synthetic_seed: Annotated[int, AT_LEAST_0] = 7  # synthetic dataset: generator seed (data, not model)
    test_fraction: Annotated[float, FRACTION] = 0.2
    """Datasets without test_* folders (daga, road, flat hcrl_ch, internet captures): share of
    each file, taken from its end, used for testing (validation lies before it)."""
    malformed: Literal["error", "skip"] = "error"
    """A malformed row: 'error' stops with file:line and what was expected; 'skip' drops it and
    counts it (metrics.json data.skipped_rows)."""
    cache: bool = True
    """Cache preprocessed graphs under cache_dir/graphs, keyed by contents, parameters and version."""
    calibration: Path | None = None
    """Attack-free capture of the target vehicle: test graphs take its fitted vocabulary/normalisation."""
    calibration_seconds: Annotated[float | None, POSITIVE] = None
    """With calibration: only its first this-many seconds (labels are never read; docs/unseen-vehicles.md)."""
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
    """How a graph's anomaly score pools its nodes' errors: 'mean_max' = mean + max, so one odd node
    still counts (a CAN ID out of place); 'mean', for attacks that shift many nodes a little (a plant)."""


@dataclasses.dataclass
class CurriculumConfig:
    """training_mode curriculum_classifier: each epoch all attack graphs plus benign graphs drawn from
    the easiest percentile by the VGAE's anomaly score, both rising over the ramp."""

    start_percentile: Annotated[float, PERCENT] = 50.0
    """At the first epoch benign graphs come from the easiest this-many percent."""
    end_percentile: Annotated[float, PERCENT] = 100.0
    """Percentile of VGAE difficulty reached at the last ramp epoch."""
    start_ratio: Annotated[float, POSITIVE] = 1.0  # benign graphs per attack graph at the first epoch
    end_ratio: Annotated[float, POSITIVE] = 4.0  # benign graphs per attack graph at the last ramp epoch
    ramp_epochs: Annotated[int, AT_LEAST_0] = 4
    """Epochs over which both rise, then hold (0 = all epochs; docs/findings.md#the-curriculum-ramp)."""


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
class ThresholdConfig:
    """How validation picks the score at or above which a window is an attack (every task)."""

    method: ThresholdMethod = "auto"
    """'fixed': the value `fixed`; 'best_f1': maximises validation F1; 'target_fpr': the lowest that
    flags at most target_fpr of benign validation windows. 'auto': best_f1 (docs/training.md#thresholds)."""
    fixed: Annotated[float, UNIT] = 0.5  # the threshold of method 'fixed'
    target_fpr: Annotated[float, FRACTION] = 0.01  # method 'target_fpr': benign FPR allowed on validation
    flow_method: ThresholdMethod = "auto"  # edge read-out flows; auto: fixed (docs/training.md#thresholds)
    calibration: CalibrationThreshold = "auto"  # with a calibration capture (docs/unseen-vehicles.md)
    calibration_quantile: Annotated[float, UNIT] = 0.95  # rule 'quantile': calibration windows below it
    calibration_margin: Annotated[float, AT_LEAST_0] = 3.0  # above, in robust SDs of their log-odds / log


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
    threshold: ThresholdConfig = dataclasses.field(default_factory=ThresholdConfig)


@dataclasses.dataclass
class TrainingConfig:
    """The optimisation loop (graph models and the DQN agent alike)."""

    epochs: Annotated[int, AT_LEAST_1] = 8  # maximum number of epochs
    batch_size: Annotated[int, AT_LEAST_1] = 64  # graphs per batch
    lr: Annotated[float, POSITIVE] = 3e-3  # learning rate
    weight_decay: Annotated[float, AT_LEAST_0] = 1e-4  # weight decay
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"  # optimizer
    scheduler: Literal["cosine", "none"] = "cosine"
    """Learning-rate schedule over the epochs."""
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"
    """Mixed precision of the training steps: auto = bf16 on GPUs with compute capability >= 8.0, fp16 +
    GradScaler below, off on CPU; bf16 = bf16 autocast (refused on GPUs below 8.0). Scoring is fp32."""
    grad_clip: Annotated[float, AT_LEAST_0] = 1.0
    """Max global gradient norm (0 disables clipping)."""
    patience: Annotated[int, AT_LEAST_1] = 4
    """Epochs without validation improvement before stopping early."""
    seed: Annotated[int, AT_LEAST_0] = 0
    """Seed for model initialisation, data order and dropout."""
    torch_threads: Annotated[int | Literal["auto"], AT_LEAST_0] = "auto"
    """CPU threads torch may use: auto = the CPUs this process may use (its affinity mask, so a Slurm
    task's cpus-per-task) divided among the runs sharing them (the local executor's jobs at once),
    resolved when the run first starts and written into its config.yaml (the count changes the last
    bits of the sums: a rerun repeats it); 0 = torch's default (one per core)."""


@dataclasses.dataclass
class OscConfig:
    """Slurm / Ohio Supercomputer Center job parameters (used by launch.py)."""

    account: str | None = None
    """Slurm account, e.g. PAS1234."""
    cluster: str | None = None
    """OSC cluster (pitzer, ascend, cardinal)."""
    partition: str | None = None
    """Slurm partition."""
    gpus_per_node: Annotated[int, AT_LEAST_0] = 0  # GPUs per job
    cpus_per_task: Annotated[int, AT_LEAST_1] = 2  # CPU cores per task
    mem_gb: Annotated[int, AT_LEAST_1] = 8  # memory per job in GiB
    time_min: Annotated[int, AT_LEAST_1] = 60
    """Wall-time limit in minutes."""
    mail_type: str | None = None
    """Slurm --mail-type, e.g. END,FAIL (mail to mail_user)."""
    mail_user: str | None = None
    qos: str | None = None  # Slurm quality of service
    constraint: str | None = None  # Slurm node constraint
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
    """What is learnt (the architectures of each: --model-architecture)."""
    model_architecture: Annotated[Architecture, tyro.conf.arg(help=ARCHITECTURE_HELP)] = "GAT"
    model_size: ModelSize = "student"
    """Size preset, see SIZE_TABLE in configs.py."""
    distillation: Distillation = "no"
    """Knowledge distillation from a finished teacher run."""
    training_mode: TrainingMode = "all_samples"
    """Which graphs are trained on."""
    recipe: str = "auto"
    """Dataset recipe (kdgat/config/recipes.py): auto = the dataset's, if any, for fields not set; none."""
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
