"""The error family of Umi (SPEC §2.4). Every error a user can cause is one of these."""


class UmiError(Exception):
    """Base of every error Umi raises on purpose."""


class InvalidInputError(UmiError):
    """The caller's input is malformed: unknown type, bad URL, bad seed, bad value."""


class LimitExceededError(InvalidInputError):
    """A size or count limit would be exceeded; nothing was changed."""


class NotFoundError(UmiError):
    """The thing named does not exist."""


class ConflictError(UmiError):
    """The thing changed since the version the caller saw; nothing was changed."""


class ReadOnlyError(UmiError):
    """A write through a read-only view (store.as_of): nothing was changed."""


class StorageError(UmiError):
    """The storage layer failed.

    `transient` tells whether a retry may help; `outcome_unknown` marks an ambiguous
    failure (the write may or may not have been applied, e.g. a crash after commit).
    """

    def __init__(self, message: str, *, transient: bool = False,
                 outcome_unknown: bool = False) -> None:
        super().__init__(message)
        self.transient = transient
        self.outcome_unknown = outcome_unknown


class CorruptionError(StorageError):
    """Stored bytes no longer match their checksum; the bad data is never returned."""


class StoreUnavailableError(StorageError):
    """The store cannot be opened or reached. The message masks any password."""


class MissingDependencyError(UmiError):
    """An optional dependency the operation needs is not installed; the message names the
    extra that brings it (e.g. `pip install 'umi[similarity]'`)."""
