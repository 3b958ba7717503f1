"""kdgat.results' statistics on run trees built here, whose answers are known: --group-by's 95 %
t intervals and --compare's pairs, mean differences, intervals and p-values, each against
scipy.stats called directly; unpaired runs listed with the reason."""

import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from kdgat import results
from kdgat.results.compare import compare_runs
from kdgat.results.stats import paired, smallest_wilcoxon_p
from tests.results.test_results import make_run, run_cli

TOL = 1e-12
NO = {"hcrlsa": [0.80, 0.82, 0.81, 0.85, 0.79], "set01": [0.60, 0.70, 0.65]}
GAIN = {"hcrlsa": [0.02, 0.03, 0.01, 0.04, 0.02], "set01": [0.05, -0.06, 0.02]}
MCC = {"hcrlsa": [0.5, 0.6, 0.55, 0.7, 0.45]}


def _set_metric(run_dir: Path, **values: float) -> None:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["test"].update(values)
    (run_dir / "metrics.json").write_text(json.dumps(metrics))


@pytest.fixture
def pairs_tree(tmp_path: Path) -> Path:
    """Tiny students without and with distillation, seed by seed, on two datasets; and runs
    that have no partner: a teacher, a seed only one side has, a rerun of a seed, another lr."""
    root = tmp_path / "runs"
    for dataset, values in NO.items():
        for seed, (f1, gain) in enumerate(zip(values, GAIN[dataset], strict=True)):
            common = dict(dataset=dataset, seed=seed, model_size="tiny")
            a = make_run(root, f1=f1, distillation="no", **common)
            b = make_run(root, f1=f1 + gain, distillation="standard", **common)
            if dataset in MCC:
                _set_metric(a, mcc=MCC[dataset][seed])
                _set_metric(b, mcc=MCC[dataset][seed] + 0.1 * seed)
    make_run(root, model_size="teacher", distillation="no", seed=0, f1=0.9)
    make_run(root, model_size="tiny", distillation="standard", seed=9, f1=0.9)
    make_run(root, dataset="set01", model_size="tiny", distillation="no", seed=2, f1=0.5)  # a rerun
    other_lr = make_run(root, model_size="tiny", distillation="no", seed=3, f1=0.7)
    config = other_lr / "config.yaml"
    config.write_text(config.read_text().replace("  lr: 0.003\n", "  lr: 0.01\n"))
    return root


def test_group_by_shows_the_t_interval_of_each_mean(pairs_tree: Path) -> None:
    df = results.usable(results.load_runs(pairs_tree))
    df = df[df["training_config.seed"] < 5]  # not the lone seed 9
    grouped = results.group_runs(df, ["dataset", "distillation"], ["test.f1"]).set_index(
        ["dataset", "distillation"]
    )
    values = np.array(NO["hcrlsa"]) + np.array(GAIN["hcrlsa"])
    low, high = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    row = grouped.loc[("hcrlsa", "standard")]
    assert row["n"] == 5 and row["test.f1.mean"] == pytest.approx(values.mean(), abs=TOL)
    assert row["test.f1.ci_low"] == pytest.approx(low, abs=TOL)
    assert row["test.f1.ci_high"] == pytest.approx(high, abs=TOL)
    assert not math.isnan(grouped.loc[("hcrlsa", "no"), "test.f1.ci_low"])
    teacher = results.group_runs(df[df["model_size"] == "teacher"], ["dataset"], ["test.f1"])
    assert teacher["n"].tolist() == [1] and teacher["test.f1.ci_low"].isna().all()  # one run: no interval

    code, out, _ = run_cli(
        str(pairs_tree),
        *("--group-by", "dataset,distillation", "--metrics", "test.f1", "--format", "markdown"),
        *("--where", "seed<5"),
    )
    assert code == 0
    assert out.splitlines()[0] == "| dataset | distillation | n | seeds | test.f1 | test.f1 95% CI |"
    assert f"[{low:.4f}, {high:.4f}]" in out


def _expected(a: list[float], b: list[float]) -> dict[str, float]:
    diff = np.array(b) - np.array(a)
    low, high = stats.t.interval(0.95, len(diff) - 1, loc=diff.mean(), scale=stats.sem(diff))
    return {
        "pairs": len(diff),
        "diff": diff.mean(),
        "ci_low": low,
        "ci_high": high,
        "t_p": stats.ttest_rel(b, a).pvalue,
        "wilcoxon_p": stats.wilcoxon(b, a).pvalue,
    }


def test_compare_pairs_by_seed_and_matches_scipy(pairs_tree: Path) -> None:
    df = results.usable(results.load_runs(pairs_tree))
    comparison = compare_runs(df, "distillation=no,standard", ["test.f1", "test.mcc"])
    table = comparison.table.set_index(["dataset", "metric"])
    assert sorted(set(table.index.get_level_values("dataset"))) == ["hcrlsa", "set01"]
    for dataset, a in NO.items():
        b = [x + g for x, g in zip(a, GAIN[dataset], strict=True)]
        if dataset == "set01":  # its seed 2 has two runs without distillation: that seed is out
            a, b = a[:2], b[:2]
        expected = _expected(a, b)
        row = table.loc[(dataset, "test.f1")]
        for key, value in expected.items():
            assert row[key] == pytest.approx(value, abs=TOL), (dataset, key)
        assert row["mean.no"] == pytest.approx(np.mean(a), abs=TOL)
        assert row["mean.standard"] == pytest.approx(np.mean(b), abs=TOL)
    hcrlsa = table.loc[("hcrlsa", "test.f1")]
    assert hcrlsa["significant"] == "yes" and hcrlsa["t_p"] < 0.05  # +0.024 on every seed
    assert table.loc[("set01", "test.f1"), "significant"] == "no"
    mcc_b = [m + 0.1 * s for s, m in enumerate(MCC["hcrlsa"])]
    mcc = table.loc[("hcrlsa", "test.mcc")]
    assert mcc["t_p"] == pytest.approx(stats.ttest_rel(mcc_b, MCC["hcrlsa"]).pvalue, abs=TOL)
    assert table.loc[("set01", "test.mcc"), "pairs"] == 0  # no MCC in those runs: nothing to pair on

    unpaired = comparison.unpaired.set_index("run")["reason"]
    assert len(unpaired) == 6
    teacher = next(r for r in unpaired.index if "/teacher/" in r)
    assert "no run with standard" in unpaired[teacher]
    assert sum("2 runs with no share seed" in reason for reason in unpaired) == 2  # the rerun, its twin
    assert sum("share its seed" in reason for reason in unpaired) == 1  # their would-be partner
    assert sum("no run with no and the same seed" in reason for reason in unpaired) == 1  # seed 9
    assert sum("no run with standard" in reason for reason in unpaired) == 2  # teacher, other lr


def test_compare_on_the_command_line(pairs_tree: Path) -> None:
    code, out, err = run_cli(
        str(pairs_tree), "--compare", "distillation=no,standard", "--metrics", "test.f1", "--format", "csv"
    )
    assert code == 0
    back = pd.read_csv(io.StringIO(out))
    expected = {"dataset", "metric", "pairs", "diff", "ci_low", "ci_high", "t_p", "wilcoxon_p"}
    assert set(back.columns) >= expected
    assert back.set_index("dataset").loc["hcrlsa", "pairs"] == 5
    assert "6 run(s) left unpaired" in err and "/teacher/no/" in err
    assert "Wilcoxon signed-rank test cannot reach p < 0.05" in err  # 2 pairs on set01

    code, out, _ = run_cli(str(pairs_tree), "--compare", "distillation=no,standard", "--metrics", "test.f1")
    header = out.splitlines()[0].split()
    assert header[:4] == ["dataset", "metric", "pairs", "mean.no"] and "significant" in header
    set01 = next(line for line in out.splitlines() if line.lstrip().startswith("set01"))
    assert set01.rstrip().endswith("n.s.")

    for spec, words in (
        ("distillation=no", "FIELD=A,B"),
        ("distillation=no,no", "FIELD=A,B"),
        ("distillation=no,topology_preserving", "no usable run has distillation=topology_preserving"),
        ("distilation=no,standard", "unknown column"),
    ):
        code, _, err = run_cli(str(pairs_tree), "--compare", spec)
        assert code == 2 and words in err and "Traceback" not in err, spec
    code, _, err = run_cli(str(pairs_tree), "--compare", "distillation=no,standard", "--deltas")
    assert code == 2 and "one at a time" in err


def test_knobs_that_go_with_the_field_do_not_stop_pairs(tmp_path: Path) -> None:
    """model_size=tiny,student: the sizes' dimensions differ with the field, nothing else."""
    root = tmp_path / "runs"
    for seed in range(3):
        make_run(root, seed=seed, f1=0.8 + 0.01 * seed, model_size="tiny")
        make_run(root, seed=seed, f1=0.85 + 0.01 * seed, model_size="student")
    comparison = compare_runs(results.usable(results.load_runs(root)), "model_size=tiny,student", ["test.f1"])
    assert comparison.unpaired.empty and comparison.table["pairs"].tolist() == [3]
    assert comparison.table["diff"].iloc[0] == pytest.approx(0.05, abs=TOL)
    assert any("hidden" in knob or "dim" in knob for knob in comparison.with_field)


def test_paired_statistics_edge_cases() -> None:
    one = paired(np.array([0.5]), np.array([0.6]))
    assert one["pairs"] == 1 and one["diff"] == pytest.approx(0.1) and math.isnan(one["t_p"])
    same = paired(np.array([0.5, 0.6, 0.7]), np.array([0.5, 0.6, 0.7]))
    assert same["diff"] == 0 and math.isnan(same["t_p"]) and math.isnan(same["wilcoxon_p"])
    shifted = paired(np.array([0.5, 0.6, 0.7]), np.array([0.6, 0.7, 0.8]) + 0.0)
    assert shifted["ci_low"] == pytest.approx(0.1) and shifted["ci_high"] == pytest.approx(0.1)
    holes = paired(np.array([0.5, np.nan, 0.7, 0.2]), np.array([0.6, 0.7, np.nan, 0.4]))
    assert holes["pairs"] == 2 and holes["mean_a"] == pytest.approx(0.35)
    assert smallest_wilcoxon_p(3) == 0.25 and smallest_wilcoxon_p(6) == pytest.approx(1 / 32)
    # The exact signed-rank floor is what scipy gives for n pairs all in one direction.
    assert stats.wilcoxon([1.0, 2.0, 3.0], [0.0, 0.0, 0.0]).pvalue == pytest.approx(smallest_wilcoxon_p(3))


def test_t_half_width_is_scipy_stats_t_interval() -> None:
    """t_half_width takes its quantile from scipy.special (scipy.stats is slow to import): the
    same figures as scipy.stats.t, bit for bit, for every count, and NaN below two values."""
    from kdgat.results.stats import t_half_width

    counts = np.array([0, 1, *range(2, 60), 100, 1000, 10_000], dtype=np.float64)
    std = np.linspace(0.01, 0.3, len(counts))
    half = t_half_width(std, counts)
    assert np.isnan(half[:2]).all()
    expected = stats.t.ppf(0.975, counts[2:] - 1) * std[2:] / np.sqrt(counts[2:])
    assert half[2:].tolist() == expected.tolist()
    assert t_half_width(0.2, 4) == stats.t.ppf(0.975, 3) * 0.2 / 2
