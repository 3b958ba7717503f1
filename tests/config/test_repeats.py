"""A flag given twice: list flags add up, single-value flags are refused, nothing else moves."""

import argparse

import pytest

from configs import ConfigError
from kdgat.config.repeats import flag_table, merge_repeats


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("runs", nargs="+")
    p.add_argument("--tags", nargs="*", default=[])
    p.add_argument("--setup", nargs="+")
    p.add_argument("--on", action="append", default=[])
    p.add_argument("--seed", type=int)
    p.add_argument("--root", "--data-root", dest="root")
    p.add_argument("--fast", action=argparse.BooleanOptionalAction)
    return p


def parse(argv: list[str]) -> argparse.Namespace:
    p = parser()
    return p.parse_args(merge_repeats(argv, flag_table(p)))


def test_every_value_of_a_repeated_list_flag_is_kept_in_order() -> None:
    args = parse(["a", "--tags", "x", "y", "--seed", "3", "--tags", "z", "--setup", "s1", "--setup=s2"])
    assert args.tags == ["x", "y", "z"] and args.setup == ["s1", "s2"] and args.seed == 3
    assert parser().parse_args(["a", "--tags", "x", "--tags", "z"]).tags == ["z"]  # argparse alone drops x


def test_positionals_and_append_flags_are_left_to_argparse() -> None:
    args = parse(["r1", "r2", "--on", "a=1", "--seed", "1", "--on", "b=2"])
    assert args.runs == ["r1", "r2"] and args.on == ["a=1", "b=2"] and args.seed == 1


def test_negative_numbers_are_values_not_flags() -> None:
    assert parse(["a", "--seed", "-1", "--tags", "-2", "-0.5", "--tags", "x"]).tags == ["-2", "-0.5", "x"]


@pytest.mark.parametrize(
    "argv",
    [
        ["a", "--seed", "1", "--seed", "2"],
        ["a", "--seed=1", "--seed", "2"],
        ["a", "--root", "x", "--data-root", "y"],  # aliases of one field
        ["a", "--fast", "--no-fast"],
    ],
)
def test_a_single_value_flag_given_twice_differently_is_refused(argv: list[str]) -> None:
    with pytest.raises(ConfigError, match="given 2 times") as err:
        parse(argv)
    assert "silently dropped" in str(err.value) and "Give it once" in str(err.value)


def test_the_same_value_twice_is_kept_once() -> None:
    args = parse(["a", "--seed", "4", "--fast", "--seed=4", "--fast", "--root", "r", "--data-root", "r"])
    assert (args.seed, args.fast, args.root) == (4, True, "r")


def test_everything_after_a_double_dash_is_untouched() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seed")
    p.add_argument("rest", nargs="*")
    assert merge_repeats(["--seed", "1", "--", "--seed", "2"], flag_table(p)) == [
        "--seed",
        "1",
        "--",
        "--seed",
        "2",
    ]
