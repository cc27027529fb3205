"""The receipt's QR code as an SVG image, for every page that shows one (driver status, test page, cabinet).

One implementation (segno, server side): a page that has a result in JavaScript asks its own server for
`/qr.svg?t=<text>` rather than carrying a second QR encoder.
"""

from __future__ import annotations

__all__ = ["MAX_QR_TEXT", "qr_svg", "qr_svg_document"]

MAX_QR_TEXT = 512  # a receipt's QR string (t=…&s=…&fn=…&i=…&fp=…&n=…) is about 80 characters


def qr_svg(text: str) -> str:
    """An inline <svg> element, to put into a page."""
    import segno

    return segno.make(text, error="m").svg_inline(scale=2, border=1)


def qr_svg_document(text: str, *, scale: int = 4) -> bytes:
    """A standalone SVG document, for an <img src=…> or a download."""
    import io

    import segno

    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=scale, border=2, xmldecl=True)
    return out.getvalue()
