"""Lists of names in messages: a few named, the rest counted."""

from collections.abc import Sequence

SHOWN = 8
"""Names a message lists before it counts the rest (a fuzzing attack brings hundreds of IDs)."""


def some_of(names: Sequence[str], shown: int = SHOWN) -> str:
    """'a, b, c' or, past `shown` names, 'a, b, ... and N more'."""
    listed = ", ".join(names[:shown])
    return listed + (f" and {len(names) - shown} more" if len(names) > shown else "")
