"""Text formatters, one module per tool, each in the format operators already know."""

from __future__ import annotations


def endpoint(address: str | None, port: int | None) -> str:
    """`addr:port`, `[v6addr]:port`, or the bare address without a port; "?" for an unknown address."""
    text = address or "?"
    if port is None:
        return text
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"
