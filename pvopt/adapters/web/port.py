"""What the page needs from the service, and nothing more: the adapter never imports it."""

from __future__ import annotations

from typing import Protocol

from machines.commands import AnyCommand, Outcome


class Site(Protocol):
    """Implemented by `pvopt.service.Service`; a fake in the page's unit tests. The status
    comes the other way: the service pushes each tick's document (`WebServer.push`)."""

    def submit(self, cmd: AnyCommand, source: str) -> Outcome:
        """Apply a manual command through the service's own path; says what was done or why
        it was refused. May block (a lock, a queue): the page calls it off its event loop."""
        ...
