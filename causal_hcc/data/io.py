"""Reading patient-level data (CSV, Excel, Parquet, SPSS, Stata) into a Cohort.

Only this module (with ``report`` and ``cli``) touches the disk. A :class:`ColumnMapping`
renames source columns (onto a study's dictionary names, or any names the roles use) and
recodes values (e.g. ``"Yes"/"No"``, ``1/2`` or SPSS value labels) before
:func:`causal_hcc.data.schema.validate_frame` checks the result.

Text is read as written: only an empty field is missing (not ``NA``, ``None`` or ``null``,
which may be real labels), a UTF-8 byte-order mark is dropped, header names are stripped of
spaces and non-breaking spaces, and a repeated header name is an error.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from causal_hcc.data.cohort import Cohort, Roles
from causal_hcc.data.coerce import closest
from causal_hcc.data.schema import StudyProfile, validate_frame
from causal_hcc.data.text import clean_header as _clean_header, read_text
from causal_hcc.errors import CohortError

READERS = {
    ".csv": "csv", ".txt": "csv", ".tsv": "tsv", ".xlsx": "excel", ".xls": "excel",
    ".parquet": "parquet", ".pq": "parquet", ".sav": "spss", ".zsav": "spss", ".dta": "stata",
}


@dataclass(frozen=True)
class ColumnMapping:
    """How a source file's columns and values map onto the data contract.

    Attributes
    ----------
    columns : dict
        Canonical name (or alias such as ``os``, ``event``, ``treatment``) -> source column.
    values : dict
        Canonical name -> {source value (as text) -> canonical value}. Applied after
        renaming and after SPSS/Stata value labels (when ``use_value_labels``).
    use_value_labels : bool
        For SPSS/Stata files, replace codes by their value labels before recoding.
    """

    columns: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict)
    use_value_labels: bool = True

    @classmethod
    def from_file(cls, path: str | Path) -> "ColumnMapping":
        """Read a TOML or JSON mapping file with tables ``columns`` and ``values``.

        Example (TOML)::

            [columns]
            os_months = "OS_months"
            death = "status"
            [values.death]
            "1" = 0     # 1 = alive in the source
            "2" = 1     # 2 = dead
        """
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        try:
            raw = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise CohortError([f"Mapping file {path}: cannot be parsed ({exc}). Use TOML "
                               "with [columns] and [values.<name>] tables, or JSON."]) from exc
        unknown = set(raw) - {"columns", "values", "use_value_labels"}
        if unknown:
            raise CohortError([f"Mapping file {path}: unknown sections {sorted(unknown)}; "
                               "allowed: columns, values, use_value_labels."])
        return cls(dict(raw.get("columns", {})), {k: dict(v) for k, v in
                                                   raw.get("values", {}).items()},
                   bool(raw.get("use_value_labels", True)))

    @classmethod
    def from_cli(cls, maps=(), recodes=(), mapping_file=None) -> "ColumnMapping":
        """Build from ``--map CANON=SOURCE`` and ``--recode CANON:SRC=DST,SRC=DST`` flags.

        Flags override entries of ``mapping_file``.
        """
        base = cls.from_file(mapping_file) if mapping_file else cls()
        columns, values = dict(base.columns), {k: dict(v) for k, v in base.values.items()}
        problems = []
        for item in maps:
            canon, sep, src = item.partition("=")
            if not sep or not canon or not src:
                problems.append(f"--map {item!r}: expected CANONICAL=SOURCE_COLUMN, "
                                "e.g. --map os_months=OS_months.")
                continue
            columns[canon.strip()] = src.strip()
        for item in recodes:
            canon, sep, pairs = item.partition(":")
            if not sep:
                problems.append(f"--recode {item!r}: expected NAME:SRC=DST[,SRC=DST], e.g. "
                                "--recode death:2=1,1=0.")
                continue
            table = values.setdefault(canon.strip(), {})
            for pair in pairs.split(","):
                src, eq, dst = pair.partition("=")
                if not eq:
                    problems.append(f"--recode {item!r}: {pair!r} is not SRC=DST.")
                    continue
                table[src.strip()] = dst.strip()
        if problems:
            raise CohortError(problems, header="The column mapping is not valid:")
        return cls(columns, values, base.use_value_labels)

    def apply(self, frame: pd.DataFrame, known: tuple[str, ...] | None = None,
              aliases: dict | None = None) -> tuple[pd.DataFrame, list[str]]:
        """Rename and recode; returns the new frame and notes on what was done.

        ``known``: the names a study's dictionary allows as mapping targets (None: any
        name). ``aliases``: short names for them (``os`` -> ``os_months``). Columns not
        mapped are kept as they are. A recode must name a column of the result.
        """
        if not self.columns and not self.values:
            return frame, []       # nothing to map: no copy of a registry-sized frame
        aliases = aliases or {}
        problems, notes = [], []
        rename = {}
        for canon, src in self.columns.items():
            name = aliases.get(canon, canon)
            if known is not None and name not in known:
                problems.append(f"Mapping names {canon!r}, which is not a variable of the "
                                f"study's dictionary.{closest(canon, known)} Allowed: "
                                f"{sorted(known)}.")
            elif src not in frame.columns:
                problems.append(f"Mapping {name}={src!r}: column {src!r} not in the file."
                                f"{closest(src, frame.columns)} Columns read: "
                                f"{list(frame.columns)[:30]}.")
            else:
                rename[src] = name
        clash = [c for c in frame.columns if c not in rename and c in rename.values()]
        if clash:
            problems.append(f"Columns {clash} already exist in the file and are also mapped "
                            "onto; map only one source column to each variable.")
        if problems:
            raise CohortError(problems, header="The column mapping does not fit the file:")
        out = frame.rename(columns=rename)
        if rename:
            notes.append("Columns mapped: " + ", ".join(f"{s} -> {c}" for s, c in rename.items()))
        unknown = [n for n in self.values if aliases.get(n, n) not in out]
        if unknown:
            raise CohortError([f"Recode names {n!r}, which is not a column of the data."
                               f"{closest(aliases.get(n, n), out.columns)} Columns: "
                               f"{[str(c) for c in out.columns][:30]}." for n in unknown],
                              header="The value recoding does not fit the file:")
        for name, table in self.values.items():
            name = aliases.get(name, name)
            lookup = {str(k).strip().lower(): v for k, v in table.items()}
            text = out[name].astype("string").str.strip().str.lower()
            # Numbers read as 1.0 should match a map written as "1".
            text = text.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True)
            mapped = text.map(lookup)
            hit = mapped.notna()
            out[name] = out[name].astype(object).where(~hit, mapped)
            notes.append(f"'{name}' recoded: " + ", ".join(f"{k}->{v}" for k, v in table.items()))
        return out, notes


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _duplicates(columns) -> list[str]:
    seen, dup = set(), []
    for c in columns:
        if c in seen and c not in dup:
            dup.append(c)
        seen.add(c)
    return dup


def read_table(path: str | Path, *, use_value_labels: bool = True, sheet=0,
               header_row: int = 0, encoding: str = "utf-8-sig", decimal: str = ".",
               sep: str | None = None) -> pd.DataFrame:
    """Read a patient-level table from CSV/TSV, Excel, Parquet, SPSS ``.sav`` or Stata ``.dta``.

    Text files: every cell is read as text and only an empty cell is missing (so a label
    ``None`` or ``NA`` stays a label, and ids keep leading zeros); the validation gate
    converts what plays a role. ``encoding`` (default UTF-8, BOM dropped), ``decimal``
    (``","`` for a decimal comma), ``sep`` (default: sniffed). Parsed by pyarrow's CSV
    reader when it is installed (registry-sized files in seconds), else by pandas' Python
    engine; both give the same frame (:mod:`causal_hcc.data.text`). Excel: ``sheet`` (name or
    0-based index) and ``header_row`` (0-based). SPSS and Stata value labels replace the
    codes when ``use_value_labels``; user-missing SPSS codes become missing.

    Raises
    ------
    CohortError
        The file is missing, of an unknown format, unreadable, or repeats a header name.
    """
    return _read_table(path, use_value_labels=use_value_labels, sheet=sheet,
                       header_row=header_row, encoding=encoding, decimal=decimal, sep=sep)


def _read_table(path, *, use_value_labels=True, sheet=0, header_row=0, encoding="utf-8-sig",
                decimal=".", sep=None, coded: dict | None = None) -> pd.DataFrame:
    """:func:`read_table`; ``coded`` (a dict) receives the text reader's factorisation of
    each column by name (:func:`causal_hcc.data.text.read_text`), for the gate."""
    path = Path(path)
    by_position = {} if coded is not None else None
    if not path.exists():
        raise CohortError([f"File {path}: not found."], header="Cannot read the data:")
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise CohortError([f"File {path}: unknown format {path.suffix!r}. Supported: "
                           f"{sorted(READERS)}."], header="Cannot read the data:")
    try:
        if kind in ("csv", "tsv"):
            delimiter = "\t" if kind == "tsv" and sep is None else sep
            frame = read_text(path, delimiter, encoding, header_row, decimal, by_position)
        elif kind == "excel":
            frame = pd.read_excel(path, sheet_name=sheet, header=header_row,
                                  keep_default_na=False, na_values=[""])
        elif kind == "parquet":
            frame = pd.read_parquet(path)
        elif kind == "spss":
            import pyreadstat
            frame, _meta = pyreadstat.read_sav(path, apply_value_formats=use_value_labels,
                                               user_missing=False)
        else:
            import pyreadstat
            frame, _meta = pyreadstat.read_dta(path, apply_value_formats=use_value_labels)
    except CohortError:
        raise
    except Exception as exc:  # a reader's own error, reported with the file name
        raise CohortError([f"File {path}: the {kind} reader failed: {exc}"],
                          header="Cannot read the data:") from exc
    frame.columns = _clean_header(frame.columns)
    dup = _duplicates(frame.columns)
    if dup:
        raise CohortError([f"Column '{c}': appears {list(frame.columns).count(c)} times in the "
                           "header. Each column name must be unique; rename or drop the "
                           "copies." for c in dup], header=f"{path}: duplicate columns.")
    if by_position:
        coded.update({frame.columns[i]: coding for i, coding in by_position.items()})
    return frame


def load_cohort(path: str | Path, mapping: ColumnMapping | None = None, *,
                roles: Roles | None = None, study: StudyProfile | None = None,
                require: tuple[str, ...] = (), missing: str = "raise", treated_value=None,
                labels=None, read_options: dict | None = None,
                aliases: dict | None = None) -> Cohort:
    """Read, map and validate a patient-level file; see :func:`validate_frame`.

    With a ``study``, mapping targets must be names of its dictionary; without one, the
    ``roles`` name the columns (after mapping).
    """
    mapping = mapping or ColumnMapping()
    coded: dict = {}
    raw = _read_table(path, use_value_labels=mapping.use_value_labels, coded=coded,
                      **(read_options or {}))
    known = study.known_columns if study is not None else None
    frame, notes = mapping.apply(raw, known, aliases)
    # The reader's factorisation of each text column spares the gate hashing a million
    # cells again; it describes ``raw`` only, so it goes along only when no mapping made
    # another frame.
    return validate_frame(frame, roles=roles, study=study, source=str(path), require=require,
                          missing=missing, treated_value=treated_value, labels=labels,
                          sha256=file_sha256(path), notes=tuple(notes),
                          coded=coded if frame is raw else None)
