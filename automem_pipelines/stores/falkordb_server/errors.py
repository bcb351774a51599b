"""The embedded server's one error type."""


class EmbeddedFalkorDBError(RuntimeError):
    pass
