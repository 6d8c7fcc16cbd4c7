"""The answer to one delivery, and the plain tuples that carry deliveries and answers
between the collector's two processes (see `ingest.intake_process`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ingest.errors import InvalidReport
from ingest.model import Channel

Delivery = tuple[int, Channel, datetime, str | None, bytes]
"""What the receiving process hands over: its token, channel, arrival, peer, raw bytes."""
Verdict = tuple[int, str, bool, InvalidReport | None, str | None]
"""The answer for a token: the fields of its `Receipt` (a plain tuple pickles fast)."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """The answer to one delivery."""

    spool_id: str
    duplicate: bool = False
    refusal: InvalidReport | None = None
    quarantine_id: str | None = None

    @property
    def accepted(self) -> bool:
        return self.refusal is None

    def verdict(self, token: int) -> Verdict:
        return (token, self.spool_id, self.duplicate, self.refusal, self.quarantine_id)
