"""An md5 computed in a thread beside the download: hashlib lets go of the GIL for large
blocks, so hashing runs on the second core while the first receives and writes (in line,
md5 took as long as the receiving and writing together). At most a few blocks wait in
the queue: memory stays bounded whatever the file's size."""

from __future__ import annotations

import hashlib
import queue
import threading

QUEUED = 8  # blocks of at most 1 MiB


class BackgroundMd5:
    def __init__(self) -> None:
        self._hash = hashlib.md5()
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUED)
        self._thread: threading.Thread | None = None

    def update(self, block: bytes) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="md5", daemon=True)
            self._thread.start()
        self._queue.put(block)

    def _run(self) -> None:
        while (block := self._queue.get()) is not None:
            self._hash.update(block)

    def close(self) -> None:
        """Wait for the blocks queued; the thread ends (safe to call twice)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def hexdigest(self) -> str:
        self.close()
        return self._hash.hexdigest()
