"""The storage package's error root."""


class StorageError(Exception):
    """A storage string is malformed, or the storage it names cannot be opened or served.

    The message is one line that never contains a password; the CLI prints it and exits 2.
    """


class StorageUnreachable(StorageError):
    """The storage named is well-formed but does not answer yet (refused, timed out, starting up): worth a wait."""
