"""Would a threshold that keeps adapting to the windows it judged benign pay on a new car? A replay
of the shared targets, window by window, beside the static calibrated threshold.

    python benchmarks/adaptive_threshold.py [--data ../shared/data] [--runs-root DIR] [--epochs 8]
        [--arch GAT VGAE] [--features default agnostic] [--seeds 0 1 2]
        [--calibration-seconds 10] [--every 50] [--pool 2000]

Runs are trained, or reused, exactly as benchmarks/transfer.py trains them (same --runs-root
layout, so its runs serve here). Each is scored on the cars it never saw with their calibration
(the first --calibration-seconds of the target's capture, no label read; transfer.py's targets:
the Spark for hcrl_sa, set_03 and set_04 for set_01). The windows are then replayed in order (file
by file, each in time order) and three detectors decide each one before it can learn from it:
- static: the calibrated threshold (the run's calibration rule over the calibration windows);
- adaptive: every --every windows the same rule is taken again over a pool of the calibration
  windows' scores and the last --pool scores it judged benign, so the threshold follows the
  driving states the calibration did not see, and also any attack it missed;
- adaptive + guard: a window joins the pool only if it scored below the static threshold, and the
  threshold never rises above the static one, so no run of missed attack windows, however long
  and slow, can lift it: it can only become more sensitive.
Each row: F1 and benign FPR, mean +- std over the seeds, for the three.
"""

import dataclasses
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from transfer import SOURCES, Target, run_options, train  # noqa: E402

from kdgat.evaluation.metrics import binary_metrics  # noqa: E402
from kdgat.scoring.evaluate import decision_threshold  # noqa: E402
from kdgat.scoring.target import Scored, score_target  # noqa: E402

DETECTORS = ("static", "adaptive", "adaptive + guard")


def replay(scored: Scored, every: int, pool_size: int, guarded: bool) -> np.ndarray:
    """Decisions (1: attack) of an adaptive detector over scored's windows, in order."""
    calibration = np.asarray(scored.calibration_scores, dtype=np.float64)
    static, _ = decision_threshold(scored)
    threshold, judged_benign = static, []
    decisions = np.zeros(len(scored.scores), dtype=np.int64)
    for i, score in enumerate(np.asarray(scored.scores, dtype=np.float64).tolist()):
        decisions[i] = score >= threshold
        if not decisions[i] and (not guarded or score < static):
            judged_benign.append(score)
        if (i + 1) % every == 0:
            pool = np.concatenate([calibration, judged_benign[-pool_size:]])
            threshold, _ = decision_threshold(dataclasses.replace(scored, calibration_scores=pool))
            if guarded:
                threshold = min(threshold, static)
    return decisions


def figures(scored: Scored, every: int, pool_size: int) -> dict[str, tuple[float, float]]:
    """F1 and benign FPR of each detector."""
    static, _ = decision_threshold(scored)
    decisions = {
        "static": (np.asarray(scored.scores) >= static).astype(np.int64),
        "adaptive": replay(scored, every, pool_size, guarded=False),
        "adaptive + guard": replay(scored, every, pool_size, guarded=True),
    }
    out = {}
    for name, decided in decisions.items():
        m = binary_metrics(scored.y, decided.astype(np.float64), 0.5)
        out[name] = (m["f1"], m["benign_fpr"])
    return out


def mean_std(values: list[float]) -> str:
    v = np.asarray(values, dtype=np.float64)
    return f"{v.mean():.3f} ± {v.std():.3f}"


def main() -> int:
    parser = run_options(__doc__)
    parser.add_argument("--every", type=int, default=50, help="windows between two threshold updates")
    parser.add_argument("--pool", type=int, default=2000, help="benign-judged scores the rule keeps")
    args = parser.parse_args()
    if args.every < 1 or args.pool < 1:
        parser.error(f"--every and --pool must be at least 1 (got {args.every}, {args.pool})")
    rows: dict[tuple[str, str, str, str], list[dict[str, tuple[float, float]]]] = {}
    for source in args.source:
        targets: list[Target] = [t for t in SOURCES[source][1] if t.calibration is not None]
        for arch in args.arch:
            for features in args.features:
                for seed in args.seeds:
                    run_dir = train(source, args.data, arch, features, args.runs_root, args.epochs, seed)
                    for target in targets:
                        scored = score_target(
                            run_dir,
                            args.data / target.path,
                            calibration=args.data / str(target.calibration),
                            calibration_seconds=args.calibration_seconds,
                        )
                        result = figures(scored, args.every, args.pool)
                        rows.setdefault((source, target.name, arch, features), []).append(result)
                        text = "  ".join(f"{d} F1 {f1:.3f} bFPR {fpr:.3f}" for d, (f1, fpr) in result.items())
                        print(f"{source} -> {target.name} {arch} {features} seed {seed}: {text}", flush=True)
    print(
        "\n| source -> target | model | features | seeds | "
        + " | ".join(f"{d} F1 / bFPR" for d in DETECTORS)
        + " |\n|---|---|---|---|"
        + "---|" * len(DETECTORS)
    )
    for (source, target, arch, features), seeds in rows.items():
        cells = [
            f"{mean_std([s[d][0] for s in seeds])} / {np.mean([s[d][1] for s in seeds]):.3f}"
            for d in DETECTORS
        ]
        print(f"| {source} -> {target} | {arch} | {features} | {len(seeds)} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
