"""A length of time a user gives (how much of a calibration capture to use): a finite number > 0.

float() takes "nan", "inf" and "-1"; a NaN compares false with everything, so a capture cut at
its first NaN seconds holds no frame and calibration would silently fit on nothing. Every
seconds knob of calibration (kdgat.evaluate --calibration-seconds, --calibrate NAME=FILE@SECONDS,
kdgat.detect --calibrate-seconds, kdgat.export --calibration FILE@SECONDS) goes through here.
"""

import argparse
import math
from collections.abc import Callable

from kdgat.common.errors import UserError


def positive_seconds(value: str | float, option: str, example: str | None = None) -> float:
    """value as a number of seconds, or a UserError naming option and the value (example: how
    a good one is written, default `option 10`)."""
    example = example or f"{option} 10"
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{option}: {value!r} is not a number of seconds; give e.g. {example}.") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise UserError(
            f"{option}: {value!r} seconds; the seconds must be a finite number > 0 (NaN, infinity, "
            f"zero or a negative value would calibrate on nothing or on all of it); give e.g. {example}."
        )
    return seconds


def seconds_argument(option: str) -> Callable[[str], float]:
    """An argparse type for option: a bad value exits 2 with positive_seconds' message."""

    def parse(text: str) -> float:
        try:
            return positive_seconds(text, option)
        except UserError as err:
            # argparse prefixes "argument OPTION: " itself
            raise argparse.ArgumentTypeError(str(err).removeprefix(f"{option}: ")) from None

    parse.__name__ = "seconds"  # argparse names the type in some messages
    return parse
