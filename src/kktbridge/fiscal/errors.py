"""Errors that people read: a stable code, a Russian and an English text, and whether a retry can help.

Every error kktbridge reports derives from BridgeError, so the HTTP layers, the journal and the cloud can
turn any of them into the same JSON without knowing where it came from. A device's own error code and text
travel inside it untouched (device_code, device_text).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["BridgeError", "FieldError", "FormatError", "ValidationFailed"]


@dataclass(frozen=True, slots=True)
class FieldError:
    """One bad field, named by the key path the caller sent (`data.purchases[2].price_1079`)."""

    path: str
    code: str
    ru: str
    en: str

    def text(self) -> str:
        return f"{self.path}: {self.ru} / {self.en}"

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "code": self.code, "ru": self.ru, "en": self.en}


class FormatError(ValueError):
    """A value that cannot be read as what its field needs (money, quantity, INN...).

    Raised by the small parsers of this package; decoders catch it and turn it into a FieldError
    with the path they know.
    """

    def __init__(self, code: str, ru: str, en: str) -> None:
        super().__init__(en)
        self.code = code
        self.ru = ru
        self.en = en

    def at(self, path: str) -> FieldError:
        return FieldError(path, self.code, self.ru, self.en)


@dataclass(eq=False)
class BridgeError(Exception):
    """An error with a stable code, texts for people, and whether retrying the same request can help."""

    code: str
    ru: str
    en: str
    retryable: bool = False
    device_code: int | str | None = None
    device_text: str | None = None
    fields: tuple[FieldError, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        Exception.__init__(self, self.text())

    def __str__(self) -> str:
        return self.text()

    def text(self) -> str:
        """The one line a cashier sees: Russian first, English after."""
        base = f"{self.ru} / {self.en}"
        device = ": ".join(str(part) for part in (self.device_code, self.device_text) if part not in (None, ""))
        if device:
            base += f" [{device}]"
        if self.fields:
            base += "; " + "; ".join(f.text() for f in self.fields)
        return base

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "ru": self.ru, "en": self.en, "retryable": self.retryable}
        if self.device_code is not None or self.device_text:
            out["device"] = {"code": self.device_code, "text": self.device_text}
        if self.fields:
            out["fields"] = [f.to_dict() for f in self.fields]
        return out


class ValidationFailed(BridgeError):
    """The request is wrong as sent; every bad field is listed at once. Retrying it unchanged cannot help."""

    def __init__(self, fields: list[FieldError] | tuple[FieldError, ...]) -> None:
        n = len(fields)
        super().__init__(
            code="validation",
            ru=f"ошибка в данных ({n} {_plural_ru(n, 'поле', 'поля', 'полей')})",
            en=f"invalid data ({n} field{'s' if n != 1 else ''})",
            retryable=False,
            fields=tuple(fields),
        )


def _plural_ru(n: int, one: str, few: str, many: str) -> str:
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many
