"""A Word document as a flat sequence of paragraphs and tables, in reading order."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class DocumentError(Exception):
    """The file cannot be read as a Word document."""


@dataclass(frozen=True)
class Paragraph:
    text: str
    heading: bool = False  # a Word heading style or an outline level


@dataclass(frozen=True)
class Table:
    rows: tuple[tuple[str, ...], ...]


Block = Paragraph | Table


class Blocks(list[Block]):
    """The blocks read from one document. ``partly``: reading stopped at a bound
    (intake.parsers.word), so what follows the last block was not read."""

    def __init__(self, blocks: Iterable[Block] = (), partly: bool = False) -> None:
        super().__init__(blocks)
        self.partly = partly


def read_partly(blocks: list[Block]) -> bool:
    """Whether reading the document these blocks came from stopped at a bound."""
    return isinstance(blocks, Blocks) and blocks.partly
