"""Read-only access to the store: each query opens the file, reads, and closes it.

Holding no connection between queries is what lets the collector keep writing while
notebooks, the weekly job and the CLI read (see docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ingest.database import connect, database_path


def read_frame(
    data_dir: Path, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """Run one parameterised query (`?` with a sequence, `$name` with a mapping) and
    return its result as a DataFrame."""
    bound: list[Any] | dict[str, Any] = (
        dict(params) if isinstance(params, Mapping) else list(params or [])
    )
    with connect(database_path(data_dir), read_only=True) as con:
        return con.execute(sql, bound).df()
