"""pvopt's own errors for what fails at its edges: the state store, the MQTT broker and the
solar forecast's sources.

Each adapter catches its library's specific exceptions (SQLAlchemy's and sqlite3's, paho's
`ValueError`/`RuntimeError`, socket and TLS `OSError`s) and raises one of these with a message a
user can act on, so the jobs, the service and the CLI catch a few names that say what failed,
never a library's. Configuration errors stay `pvopt.config.ConfigError`; the InfluxDB sink's are
`SinkUnavailable`/`SinkRejected`, beside the `Sink` port they belong to.

Here, in `machines/`, the lowest floor, because every floor must be able to name them: `state/`
raises the store's, the adapters the broker's, `jobs/` and the CLI catch them, and the lean
`pvopt tic` bridge (paho and serial only, on a Pi) must not load `state/` and its SQLAlchemy to
raise `BrokerError`. The module is exception classes only, no import: the core stays pure.
"""

from __future__ import annotations


class PvoptError(RuntimeError):
    """An edge of pvopt failed; the message says what, where, and what to do."""


class StoreError(PvoptError):
    """The store cannot be used as it is; says why (never silently reset)."""


class StoreMissing(StoreError):
    """A read-only open found no store yet (no file, or a file `pvopt run` has not set up)."""


class BrokerError(PvoptError):
    """The MQTT client cannot be set up or started (TLS files, host, port, threads)."""


class BrokerUnavailable(BrokerError):
    """The broker cannot be reached now (refused, unknown host, TLS handshake)."""


class ForecastError(PvoptError):
    """A forecast cannot be used as read: says which source and which field (never cached)."""


class ForecastUnavailable(ForecastError):
    """The forecast's source cannot be reached now (refused, timeout, a server error): worth
    retrying after a back-off."""


class ForecastRateLimited(ForecastError):
    """The source refuses more requests for a while (HTTP 429): retrying sooner cannot help."""

    def __init__(self, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s
