"""What a run's graph-reading code takes: a GraphSet (in memory) or a GraphStore (memory-mapped).

Both answer the same questions (kdgat/data/graphset.py's module docstring), so the trainers,
scorers and reports accept either; this names the pair once for their annotations. It lives in
its own module because store.py builds on graphset.py (graphset.py cannot name GraphStore).
"""

from collections.abc import Sequence

from kdgat.data.graphset import GraphSet
from kdgat.data.store import GraphStore

Graphs = GraphSet | GraphStore


def concat_graphs(parts: Sequence[Graphs]) -> Graphs:
    """Every part's graphs in order: a GraphSet where every part is one, else a GraphStore
    (as GraphSet.concat decides)."""
    sets = [p for p in parts if isinstance(p, GraphSet)]
    if len(sets) == len(parts):
        return GraphSet.concat(sets)
    return GraphStore.concat(list(parts))
