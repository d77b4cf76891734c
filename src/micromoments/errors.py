"""One exception family for the whole package.

Every message says what went wrong, where (file, line or row, field) and how
to fix it. The CLI prints it on one line and exits with code 2; the API turns
it into a 4xx JSON body.
"""

from __future__ import annotations


class MicromomentsError(Exception):
    """Base class: something the user can fix."""

    exit_code = 2

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class InputError(MicromomentsError):
    """A file or a payload cannot be read as given."""


class ConfigError(MicromomentsError):
    """`micromoments.toml` or a YAML file it names is wrong."""


class StoreError(MicromomentsError):
    """The store is missing, locked or holds an unexpected schema."""
