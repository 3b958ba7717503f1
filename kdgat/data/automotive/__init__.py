"""automotive: CAN bus captures -> one graph per window of frames (docs/data.md).

Nodes are the distinct CAN IDs of a window (their identity is learned through a vocabulary
fitted on benign training frames), edges the transitions between consecutive frames.
"""
