"""Errors that people read: a stable code, a Russian and an English text, and whether a retry can help.

Every error kktbridge reports derives from BridgeError, so the HTTP layers, the journal and the cloud can
turn any of them into the same JSON without knowing where it came from. A device's own error code and text
travel inside it untouched (device_code, device_text).

Texts are assembled here only: an error's own `ru`/`en` is its headline, its `fields` are the problems, and each
problem appears once in each text (`text()` pairs the languages, `text_ru()`/`text_en()` hold one each). A value
the caller sent enters a text only through `shown()`, which bounds it and escapes what could garble a message,
a log line or a terminal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = ["BridgeError", "FieldError", "FormatError", "ValidationFailed", "shown"]

# C0/C1 controls, line and paragraph separators, and the bidirectional overrides ("Trojan source").
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def shown(value: object, limit: int = 40) -> str:
    """A value a caller sent, as it may appear in an error text or a log line: at most `limit` characters,
    control characters and lone surrogates escaped (`\\x1b`, `\\udcc7`), so no input can garble the text."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool) or value is None:
        text = {True: "true", False: "false", None: "null"}[value]
    elif isinstance(value, int):
        text = str(value) if value.bit_length() <= 256 else "<a very large number>"
    elif isinstance(value, Decimal):
        text = str(value)
    else:
        text = f"<{type(value).__name__}>"
    if len(text) <= limit and text.isprintable():  # no control, format or surrogate character: as it is
        return text
    cut = text[:limit].encode("utf-8", "backslashreplace").decode("utf-8")
    cut = _UNSAFE.sub(lambda match: f"\\x{ord(match[0]):02x}" if ord(match[0]) < 0x100 else
                      f"\\u{ord(match[0]):04x}", cut)
    return cut + ("…" if len(text) > limit else "")


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

    def _more(self) -> tuple[str, list[FieldError]]:
        """The problems the headline does not name already (a headline may carry the first one: each is named
        once), and what joins them to it: ": " after a bare headline, "; " after one that names a problem."""
        more = [f for f in self.fields if f"{f.path}: {f.ru}" not in self.ru or f"{f.path}: {f.en}" not in self.en]
        return ("; " if len(more) < len(self.fields) else ": "), more

    def text(self) -> str:
        """The one line a cashier sees: each problem once, Russian first, English after it."""
        base = f"{self.ru} / {self.en}"
        device = ": ".join(str(part) for part in (self.device_code, self.device_text) if part not in (None, ""))
        if device:
            base += f" [{device}]"
        joint, more = self._more()
        return base + (joint + "; ".join(f.text() for f in more) if more else "")

    def text_ru(self) -> str:
        """The whole message in Russian: the headline, then every problem (without the device's own text)."""
        joint, more = self._more()
        return self.ru + (joint + "; ".join(f"{f.path}: {f.ru}" for f in more) if more else "")

    def text_en(self) -> str:
        """The whole message in English: the headline, then every problem (without the device's own text)."""
        joint, more = self._more()
        return self.en + (joint + "; ".join(f"{f.path}: {f.en}" for f in more) if more else "")

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
