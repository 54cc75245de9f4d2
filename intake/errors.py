"""One root exception for everything intake raises on purpose.

Configuration errors are permanent (retrying with the same settings cannot help);
operational errors carry their own ``permanent`` flag, which decides whether the
daemon retries.
"""


class IntakeError(Exception):
    permanent = True

    def __init__(self, message: str, *, permanent: bool | None = None):
        super().__init__(message)
        if permanent is not None:
            self.permanent = permanent


class ConfigError(IntakeError):
    """A setting or policy value is missing or wrong; the message names it."""

    permanent = True


class OperationalError(IntakeError):
    """Something failed while working (a tool, the disk, a server)."""

    permanent = False


class LoginRejected(ConfigError):
    """The mailbox refused our login: wrong user or password. `intake run` keeps going
    (it tries again each round, so a mended password is picked up); a one-shot command
    stops."""
