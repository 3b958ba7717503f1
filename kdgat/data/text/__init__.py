"""Text scanning shared by every reader: strict, vectorised line and field splitting, word parsing,
and the malformed-row policy."""
