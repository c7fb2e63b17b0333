"""Domain errors, turned into HTTP responses in one place (searchsite/api.py)."""


class ApplicationError(Exception):
    status = 400

    def __init__(self, message: str, *, extra: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class NotFound(ApplicationError):
    status = 404


class Unauthorized(ApplicationError):
    status = 401


class PermissionDenied(ApplicationError):
    status = 403


class TooLarge(ApplicationError):
    status = 413


class Conflict(ApplicationError):
    """The request is fine but the data cannot serve it as it is (mixed models)."""

    status = 409


class Unavailable(ApplicationError):
    """A part the request needs (a remote embedding provider) is away for now."""

    status = 503


class TooManyRequests(ApplicationError):
    """The client is over its rate: ``retry_after`` seconds until it lifts."""

    status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
