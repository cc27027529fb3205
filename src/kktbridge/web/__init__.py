"""Templates and static assets of kktbridge's pages, shipped in the package: the pages work without internet.

- `static/base.css` and `static/lang.js`: the look and the ru/en switch shared by every page (both languages
  are in the page; `<html data-lang>` chooses which one shows);
- `qr.py`: the one QR encoder (SVG), server side.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["asset", "asset_bytes"]


def asset(name: str) -> str:
    """The text of a page template or asset shipped with kktbridge."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def asset_bytes(name: str) -> bytes:
    """The bytes of an asset (an image, a font), as shipped."""
    return resources.files(__package__).joinpath(name).read_bytes()
