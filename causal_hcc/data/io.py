"""Reading patient-level data (CSV, Excel, Parquet, SPSS, Stata) onto the data contract.

Only this module (with ``report`` and ``cli``) touches the disk. A :class:`ColumnMapping`
renames source columns to the canonical names of ``data_dictionary.md`` and recodes
values (e.g. ``"Yes"/"No"``, ``1/2`` or SPSS value labels) before
:func:`causal_hcc.data.schema.validate_frame` checks the result.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pandas as pd

from causal_hcc.data.schema import ALIASES, VARIABLE_BY_NAME, Cohort, validate_frame
from causal_hcc.errors import CohortError

BUNDLED_COHORT = "reconstructed_pseudo_cohort.csv"
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
            table = values.setdefault(_canonical(canon.strip()), {})
            for pair in pairs.split(","):
                src, eq, dst = pair.partition("=")
                if not eq:
                    problems.append(f"--recode {item!r}: {pair!r} is not SRC=DST.")
                    continue
                table[src.strip()] = dst.strip()
        if problems:
            raise CohortError(problems, header="The column mapping is not valid:")
        return cls(columns, values, base.use_value_labels)

    def apply(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
        """Rename and recode; returns the new frame and notes on what was done.

        Unmapped columns that already carry canonical names are kept as they are; source
        columns that are neither mapped nor canonical are kept too (validation keeps them
        aside as extra columns).
        """
        problems, notes = [], []
        rename = {}
        for canon, src in self.columns.items():
            name = _canonical(canon)
            if name not in VARIABLE_BY_NAME:
                problems.append(f"Mapping names {canon!r}, which is not a variable of the "
                                f"data contract; use one of {sorted(VARIABLE_BY_NAME)}.")
            elif src not in frame.columns:
                problems.append(f"Mapping {name}={src!r}: column {src!r} not in the file. "
                                f"Columns read: {list(frame.columns)[:30]}.")
            else:
                rename[src] = name
        clash = [c for c in frame.columns if c in VARIABLE_BY_NAME and c not in rename
                 and c in rename.values()]
        if clash:
            problems.append(f"Columns {clash} already exist in the file and are also mapped "
                            "onto; map only one source column to each variable.")
        if problems:
            raise CohortError(problems, header="The column mapping does not fit the file:")
        out = frame.rename(columns=rename)
        if rename:
            notes.append("Columns mapped: " + ", ".join(f"{s} -> {c}" for s, c in rename.items()))
        for name, table in self.values.items():
            name = _canonical(name)
            if name not in out:
                continue
            lookup = {str(k).strip().lower(): v for k, v in table.items()}
            text = out[name].astype("string").str.strip().str.lower()
            # Numbers read as 1.0 should match a map written as "1".
            text = text.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True)
            mapped = text.map(lookup)
            hit = mapped.notna()
            out[name] = out[name].astype(object).where(~hit, mapped)
            notes.append(f"'{name}' recoded: " + ", ".join(f"{k}->{v}" for k, v in table.items()))
        return out, notes


def _canonical(name: str) -> str:
    return ALIASES.get(name, name)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_table(path: str | Path, *, use_value_labels: bool = True, sheet=0) -> pd.DataFrame:
    """Read a patient-level table from CSV/TSV, Excel, Parquet, SPSS ``.sav`` or Stata ``.dta``.

    SPSS and Stata value labels replace the codes when ``use_value_labels`` (so a
    mapping can recode ``"Yes"``/``"No"``); user-missing SPSS codes become missing.
    """
    path = Path(path)
    if not path.exists():
        raise CohortError([f"File {path}: not found."], header="Cannot read the data:")
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise CohortError([f"File {path}: unknown format {path.suffix!r}. Supported: "
                           f"{sorted(READERS)}."], header="Cannot read the data:")
    try:
        if kind == "csv":
            # sep=None sniffs the delimiter (semicolon CSVs from European Excel).
            return pd.read_csv(path, sep=None, engine="python")
        if kind == "tsv":
            return pd.read_csv(path, sep="\t")
        if kind == "excel":
            return pd.read_excel(path, sheet_name=sheet)
        if kind == "parquet":
            return pd.read_parquet(path)
        if kind == "spss":
            import pyreadstat
            frame, _meta = pyreadstat.read_sav(path, apply_value_formats=use_value_labels,
                                               user_missing=False)
            return frame
        import pyreadstat
        frame, _meta = pyreadstat.read_dta(path, apply_value_formats=use_value_labels)
        return frame
    except CohortError:
        raise
    except Exception as exc:  # a reader's own error, reported with the file name
        raise CohortError([f"File {path}: the {kind} reader failed: {exc}"],
                          header="Cannot read the data:") from exc


def load_cohort(path: str | Path, mapping: ColumnMapping | None = None, *,
                require: tuple[str, ...] = (), missing: str = "raise") -> Cohort:
    """Read, map and validate a patient-level file; see :func:`validate_frame`."""
    mapping = mapping or ColumnMapping()
    raw = read_table(path, use_value_labels=mapping.use_value_labels)
    frame, notes = mapping.apply(raw)
    return validate_frame(frame, source=str(path), require=require, missing=missing,
                          sha256=file_sha256(path), notes=tuple(notes))


def bundled_cohort_path() -> Path:
    """Path of the bundled reconstructed pseudo-cohort CSV inside the package."""
    return Path(str(resources.files("causal_hcc.data").joinpath("bundled", BUNDLED_COHORT)))


def load_bundled(*, require: tuple[str, ...] = ()) -> Cohort:
    """The bundled 76-patient RECONSTRUCTED pseudo-cohort (not the study's patients)."""
    path = bundled_cohort_path()
    frame = pd.read_csv(path)
    return validate_frame(frame, source=f"bundled reconstructed pseudo-cohort ({path.name})",
                          require=require, reconstructed=True, sha256=file_sha256(path))


def load(data: str | Path | None = None, mapping: ColumnMapping | None = None, *,
         require: tuple[str, ...] = (), missing: str = "raise") -> Cohort:
    """The bundled pseudo-cohort when ``data`` is None, else :func:`load_cohort`."""
    if data is None:
        return load_bundled(require=require)
    return load_cohort(data, mapping, require=require, missing=missing)
