"""Text files (CSV/TSV) read cell by cell as text, fast.

The contract (:func:`causal_hcc.data.io.read_table`): every cell is text, surrounding
whitespace (what Python's ``str.strip`` removes) is dropped and only an empty cell is
missing (``NaN``; ``NA``, ``None``, ``null`` stay labels); blank lines are skipped; row
``header_row`` is the header and rows above it are ignored; the delimiter is sniffed from
the first line unless given; with a decimal comma, a column whose every value reads as a
number written with ``,`` gets ``.`` instead. The result has object columns of ``str``.

:func:`read_text` parses with pyarrow's multithreaded CSV reader and strips, blanks and
converts whole columns at once. Files it cannot read the same way (a row with more or
fewer fields than the first, an undetectable delimiter, a reader error) go to
:func:`read_text_python`, pandas' Python engine, which defines the contract and reports
the error as before. ``tests/test_read_text.py`` checks that both give the same frame.
"""

from __future__ import annotations

import csv
import re

import numpy as np
import pandas as pd

#: Every character ``str.isspace`` accepts: what ``str.strip()`` removes.
WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004"
              "\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_DECIMAL_COMMA = re.compile(r"-?[\d.]*,\d+|-?\d+")
_UTF8 = {"utf-8", "utf8", "utf-8-sig", "utf_8", "utf_8_sig"}


def read_text(path, sep: str | None, encoding: str, header_row: int,
              decimal: str, coded: dict | None = None) -> pd.DataFrame:
    """The text table at ``path`` (see the module docstring); columns named by its header
    row exactly as written (the caller cleans the names).

    ``coded``, when a dict, receives ``{column position: (codes, uniques)}``, a
    factorisation of each column built by pyarrow (``pd.factorize``'s: ``uniques`` the
    distinct non-missing cells in order of appearance, ``codes`` an intp array, -1 where
    missing), so that the validation gate need not hash the cells again. It stays empty
    when the file is read by the Python engine or with a decimal comma.
    """
    try:
        raw = _read_pyarrow(path, sep, encoding)
    except _Fallback:
        raw = None
    if raw is None:
        return read_text_python(path, sep, encoding, header_row, decimal)
    if header_row >= len(raw):
        # as pandas: the header row lies beyond the data
        raise IndexError("single positional indexer is out-of-bounds")
    header = clean_header(raw.column(i)[header_row].as_py() for i in range(raw.num_columns))
    body = raw.slice(header_row + 1)
    columns = {}
    for i in range(body.num_columns):
        columns[i], coding = _column(body.column(i))
        if coded is not None and decimal == ".":
            coded[i] = coding
    frame = pd.DataFrame(columns, index=pd.RangeIndex(body.num_rows), copy=False)
    del raw, body, columns
    _release_arrow_memory()
    frame.columns = header
    if decimal != ".":
        frame = _decimal(frame, decimal)
    return frame


def clean_header(columns) -> list[str]:
    """Header names without surrounding spaces, non-breaking spaces or a BOM."""
    return [str(c).replace("\ufeff", "").replace("\xa0", " ").strip() for c in columns]


def _release_arrow_memory() -> None:
    """Give the parsed table's memory back (Arrow's allocator keeps freed blocks)."""
    try:
        import pyarrow as pa
        pa.default_memory_pool().release_unused()
    except (ImportError, AttributeError):
        pass


class _Fallback(Exception):
    """pyarrow cannot read this file with the contract's semantics: use pandas."""


def _sniff(path, encoding: str) -> str:
    """The delimiter, sniffed from the first line as pandas does."""
    with open(path, encoding=encoding, newline="") as handle:
        line = handle.readline()
    return csv.Sniffer().sniff(line).delimiter


def _n_fields(path, encoding: str, delimiter: str) -> int:
    with open(path, encoding=encoding, newline="") as handle:
        for row in csv.reader(handle, delimiter=delimiter, strict=True):
            if row:
                return len(row)
    return 0


def _read_pyarrow(path, sep, encoding):
    try:
        import pyarrow as pa
        from pyarrow import csv as pa_csv
    except ImportError:
        raise _Fallback() from None
    try:
        delimiter = sep if sep is not None else _sniff(path, encoding)
        if len(delimiter) != 1:
            raise _Fallback()
        width = _n_fields(path, encoding, delimiter)
    except (csv.Error, UnicodeDecodeError, OSError, LookupError):
        raise _Fallback() from None
    if width == 0:
        raise _Fallback()
    codec = "utf8" if encoding.lower().replace(" ", "") in _UTF8 else encoding
    read = pa_csv.ReadOptions(autogenerate_column_names=True, encoding=codec,
                              block_size=1 << 24)
    parse = pa_csv.ParseOptions(delimiter=delimiter, quote_char='"', double_quote=True,
                                newlines_in_values=True, ignore_empty_lines=True)
    convert = pa_csv.ConvertOptions(column_types={f"f{i}": pa.string() for i in range(width)},
                                    strings_can_be_null=False,
                                    quoted_strings_can_be_null=False)
    try:
        table = pa_csv.read_csv(path, read_options=read, parse_options=parse,
                                convert_options=convert)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError):
        # Not skipped: a file Arrow cannot parse (ragged rows, an encoding it lacks) is read
        # by the pandas reference reader, which reports its problems by row and column.
        raise _Fallback() from None
    if table.num_columns != width:
        raise _Fallback()
    # pyarrow drops a leading UTF-8 BOM; with plain utf-8 pandas keeps it in the first
    # header name, which clean_header removes: the same names either way.
    return table


def _column(array) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Strip every cell, blank -> missing: an object array of str with NaN, and its
    factorisation (codes, uniques) as ``pd.factorize`` gives it.

    The column is built from its distinct values, so equal cells share one ``str`` object
    (memory: a pointer per cell instead of a string per cell, for codes, categories and
    rounded numbers; an id column costs what its strings cost either way).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    # Distinct values first, then strip those (a few hundred, not a million cells); values
    # that stripping makes equal (" a" and "a") are then merged, the first seen first.
    encoded = pc.dictionary_encode(array)
    dictionary = encoded.dictionary
    indices = encoded.indices.to_numpy(zero_copy_only=False).astype(np.intp)
    trimmed = pc.utf8_trim(dictionary, characters=WHITESPACE)
    if len(dictionary) and not pc.all(pc.equal(trimmed, dictionary)).as_py():
        merged = pc.dictionary_encode(trimmed)
        indices = merged.indices.to_numpy(zero_copy_only=False).astype(np.intp)[indices]
        trimmed = merged.dictionary
    levels = trimmed.to_numpy(zero_copy_only=False).astype(object, copy=False)
    blank = np.flatnonzero(pc.equal(pc.binary_length(trimmed), 0)
                           .to_numpy(zero_copy_only=False))
    if not len(blank):
        return levels[indices], (indices, levels)
    # the blank level becomes missing: NaN in the cells, code -1, and the levels after it
    # move down one (the dictionary is in order of appearance, as pd.factorize's uniques)
    b = int(blank[0])
    values = levels.copy()
    values[b] = np.nan
    values = values[indices]
    codes = indices - (indices > b)
    codes[indices == b] = -1
    return values, (codes, np.delete(levels, b))


def _decimal(frame: pd.DataFrame, decimal: str) -> pd.DataFrame:
    """Columns written with a decimal comma, everywhere, get a decimal point."""
    out = {}
    for name, col in frame.items():
        uniques = pd.unique(col.dropna())
        if all(_DECIMAL_COMMA.fullmatch(v) for v in uniques):
            col = col.str.replace(decimal, ".", regex=False)
        out[name] = col
    result = pd.DataFrame(out, index=frame.index)
    result.columns = frame.columns
    return result


def read_text_python(path, sep: str | None, encoding: str, header_row: int,
                     decimal: str) -> pd.DataFrame:
    """The reference reader: pandas' Python engine, then cell by cell (defines the
    contract; used when pyarrow cannot read a file the same way)."""
    text_kw = dict(sep=sep, engine="python", dtype=str, keep_default_na=False,
                   na_values=[""], encoding=encoding, header=None)
    raw = pd.read_csv(path, **text_kw)
    header = clean_header(raw.iloc[header_row].fillna(""))
    frame = raw.iloc[header_row + 1:].reset_index(drop=True)
    frame.columns = header
    frame = frame.apply(lambda c: c.str.strip())
    frame = frame.mask(frame == "")
    if decimal != ".":
        frame = frame.apply(lambda c: c.str.replace(decimal, ".", regex=False)
                            if c.str.fullmatch(r"-?[\d.]*,\d+|-?\d+").fillna(True).all()
                            else c)
    return frame
