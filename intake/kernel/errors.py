"""One root exception for everything intake raises on purpose, in two kinds that decide
what happens next.

- ``TransientError``: the moment is wrong (a server down, a disk full): try again later,
  after ``retry_after`` seconds when the code that raised it knows how long.
- ``PermanentError``: trying again cannot help. For a message: quarantine it for staff
  (or tell the sender); for a command: one line naming what to fix.

They are raised by the code that knows (the mail sources, the delivery transports, the
settings), never guessed from a library's exception elsewhere.
"""

from __future__ import annotations


class IntakeError(Exception):
    """The root: an error intake raises on purpose, with a message for people."""


class TransientError(IntakeError):
    """Try again later; ``retry_after`` (seconds) when the raiser knows how long."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(IntakeError):
    """Trying again with the same input and settings cannot help."""


class ConfigError(PermanentError):
    """A setting or policy value is missing or wrong; the message names it."""


class LoginRejected(ConfigError):
    """The mailbox refused our login: wrong user or password. `intake run` keeps going
    (it tries again each round, so a mended password is picked up); a one-shot command
    stops."""


def unverified_certificate(setting: str, where: str, reason: str) -> ConfigError:
    """A server certificate that did not verify (IMAP, SMTP): never advise turning TLS off."""
    return ConfigError(
        f"{setting}: the certificate of {where} could not be verified ({reason}); check the host name, "
        "this server's clock and its CA certificates (a proxy that intercepts TLS needs its CA installed); "
        "do not turn TLS off")
