"""Per-patient tables on disk: CSV, or Parquet when the CSV would be too large to be useful.

A registry-sized per-patient table (``propensity``, ``matched_pairs``: a row per patient)
would make a CSV of hundreds of megabytes. :func:`write_csv` estimates the CSV's size
from a sample of rows (it never renders the whole frame to find out) and, above
:data:`PARQUET_ABOVE_BYTES`, writes Parquet instead (``NAME.parquet`` beside where
``NAME.csv`` would be: same columns, ``data_provenance`` first, typed and compressed). The
file's metadata records the estimate, so the command can say what it did and why
(:func:`parquet_note`). Below the threshold the CSV is rendered with Arrow's string
kernels, byte for byte what ``DataFrame.to_csv`` writes (pandas writes the frames it
cannot render the same way); a 100,000-row table takes a fifth of pandas' time.
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
    if not _write_csv_fast(frame, path):
        frame.to_csv(path, index=False)
    return path


# ---------------------------------------------------------------- the CSV, fast
#: Rows rendered at a time by the fast writer (bounds its memory and Arrow's 2 GB offsets).
CHUNK_ROWS = 200_000
#: numpy (and so pandas) prints a float without an exponent in [1e-4, 1e16); there the
#: fast writer's text differs from numpy's at most by a missing ".0".
_POSITIONAL = (1e-4, 1e16)


def _write_csv_fast(frame: pd.DataFrame, path: Path) -> bool:
    """Write ``frame.to_csv(path, index=False)``'s bytes with Arrow's string kernels;
    False (nothing written) for a frame it cannot render the same way.

    What pandas writes, and what is done here the same way: floats as numpy's shortest
    round-trip text (``astype(str)``: "1.0", "0.25", "1e-05"), integers and booleans as
    Python prints them, text as it is, missing cells empty, a field quoted (quotes
    doubled) when it holds a comma or a quote, lines ending in "\n". Arrow's float text
    is the same shortest round-trip digits; it is used where numpy prints positionally
    (adding the ".0" numpy keeps on whole numbers), and numpy's own text is taken for
    the other cells (exponents, inf, NaN). Anything else (other column types, text with
    line breaks, a single column, a non-text header) is left to pandas. Checked cell by
    cell against pandas in tests/test_parquet_outputs.py.
    """
    if frame.shape[1] < 2 or not all(isinstance(c, str) for c in frame.columns):
        return False
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:
        return False
    header = _quoted_text(pa.array(list(frame.columns), type=pa.string()), pc)
    if header is None:
        return False
    chunks = []
    for start in range(0, len(frame), CHUNK_ROWS):
        part = frame.iloc[start:start + CHUNK_ROWS]
        cells = []
        for j in range(part.shape[1]):
            text = _cells_text(part.iloc[:, j], pa, pc)
            if text is None:
                return False
            cells.append(text)
        try:
            last = pc.binary_join_element_wise(cells[-1], "\n", "")
            lines = pc.binary_join_element_wise(*cells[:-1], last, ",")
        except pa.ArrowException:      # e.g. a chunk beyond Arrow's 2 GB of text
            return False
        chunks.append(_buffer_bytes(lines))
    with open(path, "wb") as handle:
        handle.write(",".join(header.to_pylist()).encode("utf-8") + b"\n")
        handle.writelines(chunks)
    return True


def _buffer_bytes(lines) -> memoryview:
    """The concatenated text of a string array without nulls (a view of its buffer)."""
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32,
                            count=len(lines) + 1, offset=4 * lines.offset)
    return memoryview(lines.buffers()[2])[offsets[0]:offsets[-1]]


def _cells_text(col: pd.Series, pa, pc):
    """A column's cells as pandas' to_csv writes them (Arrow string array), or None."""
    dtype = col.dtype
    if dtype == np.float64:
        return _float_text(col.to_numpy(), pa, pc)
    if dtype.kind in "iu" and isinstance(dtype, np.dtype):
        return pc.cast(pa.array(col.to_numpy()), pa.string())
    if dtype == np.bool_:
        return pc.if_else(pa.array(col.to_numpy()), "True", "False")
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) and dtype.kind in "iu":
        # nullable integers: pandas prints each as a Python int, missing as empty
        return pc.fill_null(pc.cast(pa.array(col), pa.string()), "")
    if dtype == object and pd.api.types.infer_dtype(col, skipna=True) in ("string", "empty"):
        try:
            text = pa.array(col.to_numpy(), type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeError):
            return None
        return _quoted_text(pc.fill_null(text, ""), pc)
    return None


def _quoted_text(text, pc):
    """Text cells quoted as the csv module does (QUOTE_MINIMAL); None when a cell holds a
    line break (left to pandas)."""
    if not pc.any(pc.match_substring_regex(text, '[,"\r\n]')).as_py():
        return text                  # the usual case: one pass over the cells
    if pc.any(pc.match_substring_regex(text, "[\r\n]")).as_py():
        return None
    special = pc.match_substring_regex(text, '[,"]')
    quoted = pc.binary_join_element_wise(
        '"', pc.replace_substring(text, '"', '""'), '"', "")
    return pc.if_else(special, quoted, text)


def _float_text(values: np.ndarray, pa, pc):
    """numpy's ``astype(str)`` of float64 values, NaN as an empty cell."""
    text = pc.cast(pa.array(values), pa.string())
    size = np.abs(values)
    with np.errstate(invalid="ignore"):
        positional = (size == 0) | ((size >= _POSITIONAL[0]) & (size < _POSITIONAL[1]))
    positional &= ~pc.match_substring(text, "e").to_numpy(zero_copy_only=False)
    whole = positional & ~pc.match_substring(text, ".").to_numpy(zero_copy_only=False)
    if whole.any():
        text = pc.if_else(pa.array(whole),
                          pc.binary_join_element_wise(text, ".0", ""), text)
    other = ~positional
    if other.any():
        own = values[other].astype(str).astype(object)
        own[np.isnan(values[other])] = ""
        text = pc.replace_with_mask(text, pa.array(other), pa.array(own, type=pa.string()))
    return text


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
