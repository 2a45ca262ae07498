"""The objectives package's errors: bad input to training (a config, a data folder)."""


class ObjectiveError(Exception):
    """Bad input to training: the message says what is wrong and how to fix it, on one line.

    The root of this package's errors; the CLI prints it as one line and exits 2. Every other exception
    is a bug and keeps its traceback.
    """


class ConfigError(ObjectiveError):
    """A training config (file, dict or override) is invalid."""


class DataError(ObjectiveError):
    """The data folder is missing, incomplete or malformed."""
