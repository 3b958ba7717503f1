"""A flag given more than once: list flags add up, a single-value flag is refused.

argparse, and tyro over it, keep only the last occurrence of a flag: `--set a=1 --set b=2` grids
over b alone, and `--training.epochs 2 --training.epochs 8` trains 8 epochs, with nothing said.
Before the real parse, `merge_repeats` rewrites the command line so that nothing given is lost:
the values of every occurrence of a list flag (nargs * or +) are gathered into its first one; a
single-value flag repeated with the same value is kept once; repeated with different values (or
as `--x` and `--no-x`) it is refused, naming each occurrence. Flags that already add up
(action="append") and unknown tokens are left as they are for the parser to judge.
"""

import argparse
import dataclasses
import re
import warnings
from typing import Any

# tyro builds its parsers with its own copy of argparse (classes that are not argparse's).
from tyro._backends import _argparse as tyro_argparse

from configs import ConfigError

_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+(e[-+]?\d+)?$", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class Flag:
    dest: str
    nargs: Any  # argparse's: None (one value), an int, "?", "*", "+"
    append: bool = False  # action="append": repeats already add up


@dataclasses.dataclass
class Given:
    """One occurrence of a flag on the command line."""

    option: str  # as typed, without any "=value"
    flag: Flag | None  # None: not a flag of these parsers
    values: list[str]
    tokens: list[str]  # as typed (kept when nothing is merged)

    def shown(self) -> str:
        return " ".join([self.option, *self.values])


def flag_table(*parsers: argparse.ArgumentParser | tyro_argparse.ArgumentParser) -> dict[str, Flag]:
    """Every option string of these parsers (argparse's or tyro's) -> its Flag (aliases share a dest)."""
    table = {}
    appends = (argparse._AppendAction, tyro_argparse._AppendAction)
    for parser in parsers:
        for action in parser._actions:  # argparse keeps no public list of them
            flag = Flag(action.dest, action.nargs, isinstance(action, appends))
            table.update(dict.fromkeys(action.option_strings, flag))
    return table


def tyro_parser(cls: type) -> tyro_argparse.ArgumentParser:
    """The argparse parser tyro builds for `cls` (its flags, aliases and nargs)."""
    import tyro.extras

    with warnings.catch_warnings():  # deprecated in tyro 1.0 for building CLIs, still exact for flags
        warnings.simplefilter("ignore", DeprecationWarning)
        return tyro.extras.get_parser(cls)


def _is_flag(token: str) -> bool:
    return token.startswith("-") and len(token) > 1 and not _NEGATIVE_NUMBER.match(token)


def _takes(nargs: Any, following: list[str]) -> int:
    """How many of the following tokens the flag takes as values."""
    if isinstance(nargs, int):
        return nargs
    free = next((i for i, t in enumerate(following) if _is_flag(t)), len(following))
    if nargs is None:
        return min(1, len(following))
    if nargs == "?":
        return min(1, free)
    return free  # "*", "+", or a flag these parsers do not know (the parser will judge it)


def scan(argv: list[str], table: dict[str, Flag]) -> list[Given | str]:
    """argv as flag occurrences and the tokens between them (positionals), in order."""
    items: list[Given | str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":  # everything after it is positional
            items += argv[i:]
            break
        if not _is_flag(token):
            items.append(token)
            i += 1
            continue
        option, eq, inline = token.partition("=")
        flag = table.get(option)
        if eq:
            items.append(Given(option, flag, [inline], [token]))
            i += 1
            continue
        n = _takes(flag.nargs if flag else "*", argv[i + 1 :])
        items.append(Given(option, flag, argv[i + 1 : i + 1 + n], argv[i : i + 1 + n]))
        i += 1 + n
    return items


def _many(flag: Flag) -> bool:
    return flag.nargs in ("*", "+") and not flag.append


def merge_repeats(argv: list[str], table: dict[str, Flag]) -> list[str]:
    """argv with list flags' repeats gathered into their first occurrence and identical repeats of a
    single-value flag dropped; a single-value flag given twice with different values is refused."""
    items = scan(argv, table)
    by_dest: dict[str, list[Given]] = {}
    for item in items:
        if isinstance(item, Given) and item.flag is not None and not item.flag.append:
            by_dest.setdefault(item.flag.dest, []).append(item)
    for seen in by_dest.values():
        if len(seen) > 1 and not _many(seen[0].flag):  # type: ignore[arg-type]
            _refuse_different(seen)
    out: list[str] = []
    emitted: set[str] = set()
    for item in items:
        if not isinstance(item, Given) or item.flag is None or item.flag.append:
            out += [item] if isinstance(item, str) else item.tokens
            continue
        dest = item.flag.dest
        if dest in emitted:
            continue
        emitted.add(dest)
        seen = by_dest[dest]
        if len(seen) > 1 and _many(item.flag):
            out += [item.option, *(v for g in seen for v in g.values)]
        else:
            out += item.tokens
    return out


def _refuse_different(seen: list[Given]) -> None:
    # A switch's meaning is its spelling (--x / --no-x); a value flag's is its value (aliases agree).
    meanings = {(g.option if g.flag and g.flag.nargs == 0 else "", tuple(g.values)) for g in seen}
    if len(meanings) == 1:
        return
    shown = " and ".join(repr(g.shown()) for g in seen)
    raise ConfigError(
        f"{seen[0].option} is given {len(seen)} times ({shown}), but it holds one setting: only the "
        f"last would count, the others silently dropped. Give it once, as you mean it."
    )


def given_dests(argv: list[str], table: dict[str, Flag]) -> list[tuple[str, Given]]:
    """(dest, occurrence) of every known flag on the command line, in order."""
    return [(item.flag.dest, item) for item in scan(argv, table) if isinstance(item, Given) and item.flag]
