"""Progress for a person at a terminal: `intake poll --once` (a line per message worked)
and `intake check` (a spinner while the package is judged). Drawn by rich on stderr, and
only when stderr is a terminal: piped or redirected, the commands print exactly what
they printed before, nothing more.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

from intake.staff_words import state_name, verdict_name

if TYPE_CHECKING:  # typing only: rich is imported when something is drawn
    from rich.progress import Progress, TaskID

# what a message's line shows: (receipt, sender, state, verdict)
Describe = Callable[[int], tuple[str | None, str | None, str | None, str | None]]


class RoundProgress:
    """One round of `intake poll --once` on a terminal: a live line says what is being
    done (reading the mailbox, which message), and each finished message leaves a line
    with its receipt, state and verdict. Log records are printed above the live line
    while it is shown (rich's redirect), so they do not tear it."""

    def __init__(self, stream: TextIO, describe: Describe) -> None:
        self.stream, self.describe = stream, describe
        self.count = 0
        self.bars: Progress | None = None
        self.task: TaskID | None = None
        self._moved: list[tuple[logging.StreamHandler, TextIO]] = []

    def __enter__(self) -> RoundProgress:
        # imported here: rich is needed only when a person watches a terminal
        from rich.console import Console
        from rich.progress import Progress as Bars, SpinnerColumn, TextColumn, TimeElapsedColumn

        console = Console(file=self.stream, highlight=False, emoji=False)
        # stdout is never redirected: piped there while stderr is a terminal, it stays clean
        self.bars = Bars(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                         redirect_stdout=False, redirect_stderr=self.stream is sys.stderr)
        self.task = self.bars.add_task("正在收取新邮件……", total=None)
        self.bars.start()
        for handler in logging.getLogger().handlers:  # log lines go above the live line
            if isinstance(handler, logging.StreamHandler) and handler.stream is self.stream:
                self._moved.append((handler, self.stream))
                handler.setStream(sys.stderr)  # rich's proxy while the display is live
        return self

    def __exit__(self, failure: type[BaseException] | None, *exc: object) -> None:
        assert self.bars is not None and self.task is not None
        ended = "本轮中断" if failure is not None else "本轮结束"  # the error itself follows on stderr
        self.bars.update(self.task, description=f"{ended}，共处理 {self.count} 封邮件。")
        self.bars.stop()
        for handler, stream in self._moved:
            handler.setStream(stream)

    def on_message(self, message_id: int, finished: bool) -> None:
        assert self.bars is not None and self.task is not None
        receipt, sender, state, verdict = self.describe(message_id)
        name = receipt or f"#{message_id}"
        if not finished:
            self.bars.update(self.task, description=f"正在处理第 {self.count + 1} 封：{name}（{sender or '发件地址无法识别'}）")
            return
        self.count += 1
        outcome = verdict_name(verdict) if verdict else "尚无结论"
        self.bars.console.print(f"  {name}  {sender or '发件地址无法识别'}  {state_name(state)}  {outcome}",
                                markup=False)


@contextmanager
def judging_spinner(stream: TextIO, text: str = "正在审核……") -> Iterator[None]:
    """A spinner on a terminal while `intake check` judges; nothing when piped."""
    if not stream.isatty():
        yield
        return
    from rich.console import Console  # imported here: only a terminal needs it

    with Console(file=stream, highlight=False).status(text):
        yield
