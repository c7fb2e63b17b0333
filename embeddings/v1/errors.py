"""Errors of the OpenAI-compatible API, in OpenAI's envelope and status codes.

The official ``openai`` client turns the status into its exception class
(400 ``BadRequestError``, 401 ``AuthenticationError``, 403 ``PermissionDeniedError``,
404 ``NotFoundError``, 413 and 422 ``APIStatusError``/``UnprocessableEntityError``,
429 ``RateLimitError``) and reads ``message``, ``type``, ``param`` and ``code``
from the body, so each error says all four.
"""

from typing import Any

INVALID_INPUT = "'$.input' is invalid"


class OpenAIError(Exception):
    status = 400
    type = "invalid_request_error"
    code: str | None = None

    def __init__(
        self, message: str, *, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def envelope(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequest(OpenAIError):
    """A request OpenAI would refuse: a missing, mistyped or empty parameter."""


class Unauthenticated(OpenAIError):
    status = 401
    code = "invalid_api_key"


class Forbidden(OpenAIError):
    """A valid key without the embeddings permission."""

    status = 403
    code = "insufficient_permissions"


class NotFound(OpenAIError):
    status = 404


class ModelNotFound(NotFound):
    code = "model_not_found"

    def __init__(self, model: str) -> None:
        super().__init__(
            f"The model '{model}' does not exist; GET /v1/models lists the models "
            "served here.",
            param="model",
        )


class TooLarge(OpenAIError):
    """Over a documented per-request limit (inputs, tokens, body size)."""

    status = 413
    code = "request_too_large"


class InputTooLong(OpenAIError):
    """An input over the model's window when the caller asked not to truncate."""

    status = 422
    code = "context_length_exceeded"


class RateLimited(OpenAIError):
    status = 429
    type = "requests"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(OpenAIError):
    """The encoder cannot answer now (a remote provider down): retry later."""

    status = 503
    type = "server_error"
