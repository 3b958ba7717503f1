"""Errors a user can fix. The CLI prints their message (no traceback) and exits with code 2."""


class UserError(Exception):
    """Base class: the message says what is wrong, why, and how to fix it."""


class DataError(UserError):
    """Input data missing, malformed or laid out differently than the dataset expects."""


class PrerequisiteError(UserError):
    """A run this experiment depends on (teacher, VGAE, GAT) is missing."""


class TrainingDiverged(UserError):
    """A loss became NaN or Inf; the message names epoch, step, batch and loss terms."""
