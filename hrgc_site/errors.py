"""The one exception a service raises when it refuses what a person asked.

A refusal is part of the domain (a reason is missing, the row is in use, the run is in the wrong
state): views catch ActionRefused and show its message. Anything else a service raises, a bare
ValueError included, is a bug and reaches the error page and the tests."""

from __future__ import annotations

from django.core.exceptions import ValidationError


class ActionRefused(Exception):
    """The action is not allowed as asked; str(error) says why, in words for the person who asked."""


class InUse(ActionRefused):
    """The row is referenced by later artefacts or still running, so it cannot be changed or deleted."""


class Invalid(ActionRefused):
    """The row the action would write does not validate; `error` keeps Django's per-field messages."""

    def __init__(self, error: ValidationError):
        super().__init__(" ".join(error.messages))
        self.error = error

    @property
    def messages(self) -> list[str]:
        return self.error.messages
