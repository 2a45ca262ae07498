"""The storage package's error type."""

from hpsearch.objectives.errors import HpsearchError


class StorageError(HpsearchError):
    """A storage string is malformed, or the storage it names cannot be opened or served."""
