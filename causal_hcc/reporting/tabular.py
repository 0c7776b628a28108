"""Per-patient tables on disk: CSV, or Parquet when the CSV would be too large to be useful.

A registry-sized per-patient table (``propensity``, ``matched_pairs``: a row per patient)
would make a CSV of hundreds of megabytes. :func:`write_csv` estimates the CSV's size
from a sample of rows (it never renders the whole frame to find out) and, above
:data:`PARQUET_ABOVE_BYTES`, writes Parquet instead (``NAME.parquet`` beside where
``NAME.csv`` would be: same columns, ``data_provenance`` first, typed and compressed). The
file's metadata records the estimate, so the command can say what it did and why
(:func:`parquet_note`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

#: Above this estimated CSV size (bytes), a table is written as Parquet.
PARQUET_ABOVE_BYTES = 100_000_000
#: Rows rendered to estimate the size of the whole CSV.
SAMPLE_ROWS = 2_000
#: Key of the Parquet file metadata holding the estimated CSV size in bytes.
ESTIMATE_KEY = b"causal_hcc.csv_estimate_bytes"


def estimate_csv_bytes(frame: pd.DataFrame, sample: int = SAMPLE_ROWS) -> int:
    """The size in bytes of ``frame.to_csv(index=False)``, estimated by rendering at most
    ``sample`` evenly spaced rows (exact when the frame has no more rows than that)."""
    header = len(frame.iloc[:0].to_csv(index=False).encode("utf-8"))
    n = len(frame)
    if n == 0:
        return header
    rows = np.unique(np.linspace(0, n - 1, min(n, sample)).round().astype(np.int64))
    body = len(frame.iloc[rows].to_csv(index=False, header=False).encode("utf-8"))
    return header + int(round(body * n / len(rows)))


def write_csv(frame: pd.DataFrame, path: str | Path, *,
              parquet_above_bytes: int | None = None) -> Path:
    """Write ``frame`` as CSV at ``path``, or as Parquet at ``path`` with suffix
    ``.parquet`` when its CSV would exceed ``parquet_above_bytes`` (default
    :data:`PARQUET_ABOVE_BYTES`); returns the path written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    limit = PARQUET_ABOVE_BYTES if parquet_above_bytes is None else parquet_above_bytes
    estimate = estimate_csv_bytes(frame)
    if estimate > limit:
        written = _write_parquet(frame, path.with_suffix(".parquet"), estimate)
        if written is not None:
            return written
    frame.to_csv(path, index=False)
    return path


def _write_parquet(frame: pd.DataFrame, path: Path, estimate: int) -> Path | None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return None
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        # mixed Python objects in a column: cells as text, missing cells kept missing
        text = frame.apply(lambda c: c.astype(object).where(c.isna(), c.astype(str))
                           if c.dtype == object else c)
        table = pa.Table.from_pandas(text, preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata[ESTIMATE_KEY] = str(estimate).encode()
    if "data_provenance" in frame and len(frame):
        metadata[b"data_provenance"] = str(frame["data_provenance"].iloc[0]).encode()
    pq.write_table(table.replace_schema_metadata(metadata), path)
    return path


def parquet_note(path: str | Path) -> str | None:
    """'NAME.parquet: 1,000,000 rows, written as Parquet because the CSV would be ~N MB'
    for a table :func:`write_csv` wrote as Parquet; None for any other file."""
    path = Path(path)
    if path.suffix != ".parquet" or not path.is_file():
        return None
    try:
        import pyarrow.parquet as pq
        meta = pq.read_metadata(path)
    except Exception:  # not a readable Parquet file: nothing to say about it
        return None
    estimate = (meta.metadata or {}).get(ESTIMATE_KEY)
    if estimate is None:
        return None
    mb = int(estimate) / 1e6
    return (f"{path.name}: {meta.num_rows:,} rows, written as Parquet because the CSV "
            f"would be ~{mb:,.0f} MB")
