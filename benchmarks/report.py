"""Markdown rendering and number formatting for the benchmark report."""

from __future__ import annotations

from collections.abc import Sequence


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None) -> str:
    """A markdown table; `align` holds one of 'l' or 'r' per column (default: first left, others right)."""
    align = align or "l" + "r" * (len(headers) - 1)
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            str(cell).ljust(width) if how == "l" else str(cell).rjust(width)
            for cell, width, how in zip(cells, widths, align, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(("-" * (w + 1) + ":") if a == "r" else ("-" * (w + 2)) for w, a in zip(widths, align, strict=True))
        + "|"
    )
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def rate(per_second: float) -> str:
    return f"{per_second:,.0f}"


def ratio(value: float) -> str:
    return f"{value:.2f}x"


def mib(size: float | None, signed: bool = False) -> str:
    if size is None:
        return "n/a"
    return f"{size / 2**20:+.2f} MiB" if signed else f"{size / 2**20:.2f} MiB"


def check(value: float, op: str, bound: float) -> bool:
    return value >= bound if op == ">=" else value > bound if op == ">" else value <= bound


def verdict(ok: bool) -> str:
    return "yes" if ok else "**NO**"
