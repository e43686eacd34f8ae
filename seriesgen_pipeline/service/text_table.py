"""Plain-text tables for people: the CLI's listings and the benchmarks' reports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def text_table(header: Sequence[str], rows: Sequence[Sequence[Any]], *,
               figures: bool = False) -> str:
    """Columns padded to their widest cell, a dashed rule under the header; None is blank.

    With ``figures``, every column but the first is aligned right (columns of numbers).
    """
    cells = [[str(c) for c in header]] + [[("" if c is None else str(c)) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def pad(cell: str, column: int) -> str:
        return cell.rjust(widths[column]) if figures and column else cell.ljust(widths[column])

    lines = ["  ".join(pad(c, i) for i, c in enumerate(row)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
