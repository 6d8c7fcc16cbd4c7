"""The keys of the reports already accepted, so a receiver can answer "duplicate" at once.

Compact: a sorted `array('q')` of 63-bit keys (8 bytes a report) plus a small set of
recent additions, merged into the array now and then. Safe to use from several threads.
"""

from __future__ import annotations

import threading
from array import array
from bisect import bisect_left
from collections.abc import Iterable

_MERGE_AT = 20_000


class KnownReports:
    def __init__(self, keys: Iterable[int] = ()) -> None:
        self._lock = threading.Lock()
        self._sorted = array("q", sorted(set(keys)))
        self._recent: set[int] = set()

    def __len__(self) -> int:
        with self._lock:
            return len(self._sorted) + len(self._recent)

    def _contains(self, key: int) -> bool:
        if key in self._recent:
            return True
        index = bisect_left(self._sorted, key)
        return index < len(self._sorted) and self._sorted[index] == key

    def add(self, key: int) -> bool:
        """Record a key; True when it was new."""
        with self._lock:
            if self._contains(key):
                return False
            self._recent.add(key)
            if len(self._recent) >= _MERGE_AT:
                self._sorted = array("q", sorted([*self._sorted, *self._recent]))
                self._recent.clear()
            return True

    def __contains__(self, key: int) -> bool:
        with self._lock:
            return self._contains(key)
