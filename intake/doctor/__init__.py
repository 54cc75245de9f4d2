"""`intake doctor`: checks the installation, piece by piece, and says in Chinese what is
fine and what to do. Each check is a ``Check``; the runner (``intake.doctor.runner``)
orders them, the report (``intake.doctor.report``) prints one line per check or the
JSON for monitoring (``{"ok", "checks": [{"name", "ok", "required", "detail"}]}``)."""

from intake.doctor.model import Check
from intake.doctor.runner import run_checks, run_doctor

__all__ = ["Check", "run_checks", "run_doctor"]
