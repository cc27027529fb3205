"""Example packets of the BIT API, as the vendor's demo pages send them: for the demo, the test page and tests."""

from __future__ import annotations

from importlib import resources

__all__ = ["example_packet"]


def example_packet(name: str = "packet-1.2.json") -> str:
    """The text of an example packet shipped with kktbridge."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
