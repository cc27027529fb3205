"""Templates and static assets of kktbridge's pages."""

from __future__ import annotations

from importlib import resources

__all__ = ["asset"]


def asset(name: str) -> str:
    """The text of a page template or asset shipped with kktbridge."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
