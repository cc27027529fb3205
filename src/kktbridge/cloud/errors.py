"""The cloud's refusals: an HTTP status, a stable code, Russian and English text naming the field, never a secret.

Handlers raise CloudError; the app's middleware renders it in the answer format of the endpoint: the JSON API's
`{"error": {...}}`, or the BIT shape `{"result": false, "error": ..., "errorCode": ...}` that the vendor's
clients read on the form endpoints. Texts name fields and limits, never a value that is or may be a secret
(a signature, a key, a password, an integrity code).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..bitapi import encode_packet_error
from ..fiscal import BridgeError, FieldError

__all__ = [
    "CloudError",
    "bad_request",
    "conflict",
    "field_error",
    "forbidden",
    "form_error_body",
    "json_error_body",
    "not_found",
    "rate_limited",
    "too_large",
    "unauthorized",
    "unavailable",
]


@dataclass(eq=False)
class CloudError(BridgeError):
    status: int = 400
    retry_after: int | None = None  # seconds, for 429 and 503
    extra: dict[str, Any] = field(default_factory=dict)  # more keys for the answer (a stored hash, a receipt)


def field_error(path: str, code: str, ru: str, en: str) -> FieldError:
    return FieldError(path, code, ru, en)


def bad_request(fields: list[FieldError] | tuple[FieldError, ...], *, code: str = "bad_request",
                ru: str = "запрос отклонён", en: str = "request refused") -> CloudError:
    first = fields[0] if fields else None
    return CloudError(code, ru + (f": {first.path}: {first.ru}" if first else ""),
                      en + (f": {first.path}: {first.en}" if first else ""), fields=tuple(fields), status=400)


def unauthorized(path: str, code: str, ru: str, en: str, *, status: int = 401) -> CloudError:
    return CloudError(code, f"{path}: {ru}", f"{path}: {en}", fields=(FieldError(path, code, ru, en),),
                      status=status)


def forbidden(path: str, code: str, ru: str, en: str) -> CloudError:
    return unauthorized(path, code, ru, en, status=403)


def not_found(ru: str, en: str) -> CloudError:
    return CloudError("not_found", ru, en, status=404)


def conflict(code: str, ru: str, en: str, **extra: Any) -> CloudError:
    return CloudError(code, ru, en, status=409, extra=extra)


def too_large(limit: int) -> CloudError:
    return CloudError("too_large", f"тело запроса больше {limit // 1024} КиБ",
                      f"the request body is larger than {limit // 1024} KiB", status=413)


def rate_limited(retry_after: int) -> CloudError:
    return CloudError("rate_limited", f"слишком много запросов; повторите через {retry_after} с",
                      f"too many requests; retry in {retry_after} s", retryable=True, status=429,
                      retry_after=retry_after)


def unavailable() -> CloudError:
    return CloudError("unavailable", "база данных облака недоступна; повторите позже",
                      "the cloud's database is unreachable; retry later", retryable=True, status=503, retry_after=5)


def json_error_body(error: BridgeError) -> dict[str, Any]:
    """The JSON API's error answer."""
    body: dict[str, Any] = {"error": {"code": error.code, "ru": error.ru, "en": error.en,
                                      "retryable": error.retryable}}
    if error.fields:
        body["error"]["fields"] = [f.to_dict() for f in error.fields]
    if isinstance(error, CloudError):
        body.update(error.extra)
    return body


def form_error_body(error: BridgeError) -> dict[str, Any]:
    """The form endpoints' error answer, in the shape the vendor's clients read (`result: false`)."""
    body = encode_packet_error(error)
    if isinstance(error, CloudError):
        body.update(error.extra)
    return body
