"""Bottom-layer helpers every part of kdgat may use: user errors, atomic writes, progress bars, the
numba kernel cache."""
