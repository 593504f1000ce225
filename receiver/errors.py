"""The one exception tree of receiver.

Every error the service can answer with is a ``ReceiverError``; the HTTP edge maps
it to RFC 9457 problem+json in one place (``receiver.http.problems``), and the CLI
(``receiver.cli.main``) maps it to one line on stderr and an exit code.

    ReceiverError                      status  code
    ├── ConfigError                      -     (CLI exit 2) bad config file, key or env
    ├── UsageError                       -     (CLI exit 2) bad usage argparse cannot see
    │   └── CannotResign                 -     (CLI exit 2) replay --resign for a provider
    │                                          whose signing secret we do not hold
    ├── NotFound                        404    NOT_FOUND, PROVIDER_UNKNOWN
    ├── MethodNotAllowed                405    METHOD_NOT_ALLOWED
    ├── RequestTimeout                  408    REQUEST_TIMEOUT (the HTTP edge: a slow head
    │                                          or body)
    ├── PayloadTooLarge                 413    BODY_TOO_LARGE
    ├── HeadersTooLarge                 431    HEADERS_TOO_LARGE (the HTTP edge)
    ├── UnsupportedMediaType            415    CONTENT_TYPE_UNSUPPORTED
    ├── SignatureError                  401    SIGNATURE_MISSING, SIGNATURE_MALFORMED,
    │                                          SIGNATURE_INVALID, TIMESTAMP_STALE,
    │                                          TIMESTAMP_FUTURE, SOURCE_NOT_ALLOWED
    ├── PayloadInvalid                  400    PAYLOAD_INVALID (names the field)
    ├── BadRequest                      400    FILTER_INVALID, CURSOR_INVALID,
    │                                          IDEMPOTENCY_KEY_MISSING, ...
    ├── Unauthorized                    401    UNAUTHORIZED
    ├── Forbidden                       403    FORBIDDEN
    ├── Unprocessable                   422    REQUEST_INVALID, PROVIDER_CANNOT_SEND, ...
    │   └── IdempotencyKeyReused        422    IDEMPOTENCY_KEY_REUSED
    ├── Gone                            410    RAW_REQUEST_DELETED (retention, erasure)
    ├── Conflict                        409    CONFLICT
    │   ├── ClientReferenceTaken        409    CONFLICT (with existing_message_id)
    │   └── IdempotencyKeyInUse         409    IDEMPOTENCY_KEY_IN_USE (with Retry-After)
    ├── RateLimited                     429    RATE_LIMIT_EXCEEDED (with Retry-After and
    │                                          the RateLimit header fields)
    ├── StoreUnavailable                503    STORE_UNAVAILABLE (with Retry-After)
    └── RetryLater                      503    a provider's known fault case in which its
                                               sender must retry (with Retry-After)

These classes hold data only; nothing here does I/O, so the sans-IO core raises them.
An error's own header fields and problem extension members come from its ``headers()``
and ``extensions()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ReceiverError(Exception):
    """Base of every error receiver raises on purpose."""

    status: int = 500
    code: str = "INTERNAL"
    title: str = "Internal error"

    def __init__(self, detail: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        if code is not None:
            self.code = code

    def headers(self) -> dict[str, str]:
        """Header fields the answer carries besides the problem itself."""
        return {}

    def extensions(self) -> dict[str, Any]:
        """Extension members of the problem+json body (RFC 9457 section 3.2)."""
        return {"field": self.field} if self.field else {}


class ConfigError(ReceiverError):
    """The config file or environment is unusable; names file, key and problem."""

    code = "CONFIG_INVALID"
    title = "Invalid configuration"

    def __init__(self, source: str, key: str, problem: str) -> None:
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {problem}")
        self.source, self.key, self.problem = source, key, problem


class UsageError(ReceiverError):
    """Bad usage argparse cannot see (a name, file or value the command cannot use): exit 2."""

    code = "USAGE_INVALID"
    title = "Invalid usage"


class CannotResign(UsageError):
    """``replay --resign`` for a provider whose requests we cannot sign (e.g. Telnyx)."""

    code = "CANNOT_RESIGN"
    title = "Cannot re-sign"


class NotFound(ReceiverError):
    status, code, title = 404, "NOT_FOUND", "Not found"


class MethodNotAllowed(ReceiverError):
    status, code, title = 405, "METHOD_NOT_ALLOWED", "Method not allowed"

    def __init__(self, detail: str, *, allow: str) -> None:
        super().__init__(detail)
        self.allow = allow

    def headers(self) -> dict[str, str]:
        return {"Allow": self.allow}


class RequestTimeout(ReceiverError):
    status, code, title = 408, "REQUEST_TIMEOUT", "Request timeout"


class PayloadTooLarge(ReceiverError):
    status, code, title = 413, "BODY_TOO_LARGE", "Request body too large"


class HeadersTooLarge(ReceiverError):
    status, code, title = 431, "HEADERS_TOO_LARGE", "Request header fields too large"


class UnsupportedMediaType(ReceiverError):
    status, code, title = 415, "CONTENT_TYPE_UNSUPPORTED", "Unsupported content type"


class SignatureError(ReceiverError):
    """The request's signature did not verify; ``code`` says which check failed."""

    status, code, title = 401, "SIGNATURE_INVALID", "Signature verification failed"

    @property
    def reason(self) -> str:
        """Short lower-case reason, used as a metrics label."""
        return self.code.lower()

    def extensions(self) -> dict[str, Any]:
        return {**super().extensions(), "check": self.reason}


class PayloadInvalid(ReceiverError):
    """Signed but unparseable or invalid payload; ``field`` names the culprit."""

    status, code, title = 400, "PAYLOAD_INVALID", "Invalid payload"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem, field=field)


class Unprocessable(ReceiverError):
    """Well-formed, but the request cannot be carried out as it stands."""

    status, code, title = 422, "UNPROCESSABLE", "Unprocessable request"


class IdempotencyKeyReused(Unprocessable):
    """The Idempotency-Key was first used for a different request."""

    code = "IDEMPOTENCY_KEY_REUSED"


class Gone(ReceiverError):
    """What was asked for existed but was deleted on purpose (retention, erasure)."""

    status, code, title = 410, "GONE", "Gone"


class Conflict(ReceiverError):
    status, code, title = 409, "CONFLICT", "Conflict"


class ClientReferenceTaken(Conflict):
    """This client already sent a message with that ``client_reference``."""

    def __init__(self, client_reference: str, existing_message_id: str) -> None:
        super().__init__(
            f"client_reference {client_reference!r} was already used for message"
            f" {existing_message_id}; look it up instead of sending again"
        )
        self.existing_message_id = existing_message_id

    def extensions(self) -> dict[str, Any]:
        return {**super().extensions(), "existing_message_id": self.existing_message_id}


class IdempotencyKeyInUse(Conflict):
    """A request with this Idempotency-Key is being processed right now."""

    code = "IDEMPOTENCY_KEY_IN_USE"

    def __init__(self, detail: str, *, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class RateLimited(ReceiverError):
    """Over the client's rate; ``rate_headers`` hold Retry-After and the RateLimit fields."""

    status, code, title = 429, "RATE_LIMIT_EXCEEDED", "Too many requests"

    def __init__(self, detail: str, *, rate_headers: Mapping[str, str]) -> None:
        super().__init__(detail)
        self.rate_headers = dict(rate_headers)

    def headers(self) -> dict[str, str]:
        return dict(self.rate_headers)


class BadRequest(ReceiverError):
    status, code, title = 400, "BAD_REQUEST", "Bad request"


class Unauthorized(ReceiverError):
    status, code, title = 401, "UNAUTHORIZED", "Authentication required"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="receiver"'}


class Forbidden(ReceiverError):
    status, code, title = 403, "FORBIDDEN", "Not allowed for this role"


class StoreUnavailable(ReceiverError):
    """The store could not commit; the sender should retry after ``retry_after`` s."""

    status, code, title = 503, "STORE_UNAVAILABLE", "Store unavailable"

    def __init__(self, detail: str, *, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class RetryLater(StoreUnavailable):
    """Ask the provider to send again (e.g. an unsigned Vonage Messages callback)."""

    code, title = "RETRY_LATER", "Send this request again later"
