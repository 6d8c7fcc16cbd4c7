"""The parser's and the store's own errors, named for the condition."""

from __future__ import annotations


class InvalidReport(Exception):
    """The input is not an acceptable TLS report. Permanent: retrying will not help."""

    code = "invalid_report"

    def __init__(self, reason: str, field: str | None = None) -> None:
        self.reason = reason
        self.field = field
        super().__init__(f"{field}: {reason}" if field else reason)

    def __reduce__(self) -> tuple[type[InvalidReport], tuple[str, str | None]]:
        # pickled (between processes) with its reason and field, not its message
        return (type(self), (self.reason, self.field))


class TooLarge(InvalidReport):
    """The input (or what it inflates to) is over a configured cap."""

    code = "too_large"


class NoReportFound(InvalidReport):
    """An email that carries no TLS report."""

    code = "no_report"


class ForeignDomain(InvalidReport):
    """A report about policy domains the operator did not configure."""

    code = "foreign_domain"


class Unauthenticated(InvalidReport):
    """A report email whose DKIM did not pass while DKIM is required."""

    code = "unauthenticated"


class InternalError(InvalidReport):
    """Checking the input failed (a bug): transient, the sender should try again later.
    The input is kept in the quarantine or the spool."""

    code = "internal_error"
