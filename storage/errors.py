"""The storage package's error root."""


class StorageError(Exception):
    """A storage string is malformed, or the storage it names cannot be opened or served.

    The message is one line that never contains a password; the CLI prints it and exits 2.
    """


class StorageUnreachable(StorageError):
    """The storage named is well-formed but does not answer yet (refused, timed out, starting up): worth a wait."""


class StorageFull(StorageError):
    """The disk under a journal file is full (or the file at its size limit): waiting does not help, freeing space
    does. The record that did not fit was cut off, so the journal reads as before the failed write."""
