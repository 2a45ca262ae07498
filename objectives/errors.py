"""The one exception type for bad input at the boundaries."""


class HpsearchError(Exception):
    """Bad input from the user: the message says what is wrong and how to fix it, on one line.

    The CLI prints it as one line and exits 2; every other exception is a bug and keeps its traceback.
    """


class ConfigError(HpsearchError):
    """A training config (file, dict or override) is invalid."""


class DataError(HpsearchError):
    """The data folder is missing, incomplete or malformed."""
