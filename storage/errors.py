"""The storage package's error root."""


class StorageError(Exception):
    """A storage string is malformed, or the storage it names cannot be opened or served.

    The message is one line that never contains a password; the CLI prints it and exits 2.
    """
