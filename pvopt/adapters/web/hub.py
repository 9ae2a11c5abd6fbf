"""Fan-out of the status to the live streams, inside the page's event loop. Each client holds
one slot, the newest document: a slow reader skips documents, it never queues them."""

from __future__ import annotations

import asyncio

MAX_STREAMS = 64


class Hub:
    def __init__(self, max_streams: int = MAX_STREAMS):
        self.max_streams = max_streams
        self.latest: str | None = None
        self.clients: set[asyncio.Queue[str | None]] = set()

    def subscribe(self) -> asyncio.Queue[str | None] | None:
        """A client's slot, or None when the page already serves `max_streams` streams."""
        if len(self.clients) >= self.max_streams:
            return None
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=1)
        self.clients.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str | None]) -> None:
        self.clients.discard(queue)

    def publish(self, text: str | None) -> None:
        """The newest document to every client (None ends the streams: shutdown)."""
        if text is not None:
            self.latest = text
        for queue in self.clients:
            if queue.full():
                queue.get_nowait()  # drop the document this client has not read yet
            queue.put_nowait(text)
