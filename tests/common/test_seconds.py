"""Every seconds knob of calibration refuses NaN, infinity and values <= 0 (exit 2, the value
named), and a replay of a missing capture exits 2 naming the file, not with a traceback."""

import argparse
from pathlib import Path

import pytest

from kdgat.cli.detect import main as detect_main
from kdgat.cli.evaluate import main as evaluate_main
from kdgat.cli.transfer import TransferError, parse_targets
from kdgat.common.errors import UserError
from kdgat.common.seconds import positive_seconds, seconds_argument

BAD = ["nan", "NaN", "inf", "-inf", "0", "-0.5", "ten", ""]


@pytest.mark.parametrize("value", BAD)
def test_positive_seconds_refuses_what_would_calibrate_on_nothing(value: str) -> None:
    with pytest.raises(UserError, match=f"--x: {value!r}"):
        positive_seconds(value, "--x")
    with pytest.raises(argparse.ArgumentTypeError, match=repr(value)):
        seconds_argument("--x")(value)


def test_positive_seconds_takes_a_finite_positive_number() -> None:
    assert positive_seconds("10", "--x") == 10.0 and positive_seconds(0.25, "--x") == 0.25


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-3"])
def test_evaluate_calibration_seconds_exits_2_naming_the_value(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(tmp_path), "--data-root", str(tmp_path), "--calibration", str(tmp_path / "c.csv")]
    with pytest.raises(SystemExit) as stopped:
        evaluate_main([*argv, f"--calibration-seconds={value}"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert f"--calibration-seconds: {value!r} seconds" in err and "Traceback" not in err


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-1", "x"])
def test_transfer_calibrate_at_seconds_refuses_the_value(value: str) -> None:
    with pytest.raises(TransferError, match=f"{value!r}"):
        parse_targets(["t=somewhere"], [f"t=capture.csv@{value}"])


def test_a_calibration_capture_cut_at_nan_seconds_is_refused_by_calibrate_itself(tmp_path: Path) -> None:
    from configs import ExperimentConfig
    from kdgat.config.resolve import resolve
    from kdgat.data.calibration import calibrate

    with pytest.raises(UserError, match="seconds must be a finite number"):
        calibrate(tmp_path / "c.csv", "can4", resolve(ExperimentConfig()), {}, seconds=float("nan"))


def test_detect_replay_of_a_missing_file_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no_such_capture.csv.gz"
    assert detect_main([str(tmp_path), "--replay", str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "Traceback" not in err


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-2"])
def test_detect_calibrate_seconds_and_export_calibration_seconds_exit_2(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kdgat.cli.export import main as export_main

    capture = tmp_path / "capture.csv"
    capture.write_text("timestamp,arbitration_id,data_field,attack\n")
    with pytest.raises(SystemExit) as stopped:
        detect_main([str(tmp_path), "--replay", str(capture), f"--calibrate-seconds={value}"])
    assert stopped.value.code == 2 and f"{value!r} seconds" in capsys.readouterr().err
    assert export_main([str(tmp_path), "--calibration", f"{capture}@{value}"]) == 2
    err = capsys.readouterr().err
    assert f"{value!r} seconds" in err and "Traceback" not in err
