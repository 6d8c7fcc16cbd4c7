"""The index of known report keys answers "new or seen" exactly, across its merges."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ingest.known_reports import KnownReports

KEYS = st.integers(min_value=0, max_value=2**63 - 1)
SMALL_KEYS = st.integers(min_value=0, max_value=50)  # repeats are likely


@given(
    stored=st.lists(st.one_of(KEYS, SMALL_KEYS), max_size=50),
    added=st.lists(st.one_of(KEYS, SMALL_KEYS), max_size=200),
    merge_at=st.integers(min_value=1, max_value=8),
)
def test_a_key_is_new_exactly_once(stored: list[int], added: list[int], merge_at: int) -> None:
    known = KnownReports(stored, merge_at=merge_at)
    seen = set(stored)
    for key in added:
        assert known.add(key) == (key not in seen)
        seen.add(key)
    assert len(known) == len(seen)
    assert all(key in known for key in seen)
    assert not any(key in known for key in range(51) if key not in seen)
