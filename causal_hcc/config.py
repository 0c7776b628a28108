"""Every option of every stage, with its default, readable from a TOML file.

``causal-hcc config --defaults`` prints the defaults as TOML; ``causal-hcc report
--config FILE`` reads a file of the same shape (any subset of keys), and command-line
flags override it. Unknown sections or keys are an error naming them, so a typo never
silently falls back to a default.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import causal_hcc.defaults as defaults
from causal_hcc.errors import CohortError


def as_tuple(value) -> tuple:
    """``None``/``""`` -> (), ``"a, b"`` -> ("a", "b"), a sequence -> its tuple."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(value)


#: Values of ``[adjust] primary`` (causal_hcc.identification.choose_primary).
PRIMARY_CHOICES = ("auto", "ATE", "ATT", "ATC", "ATO")
TIES_CHOICES = ("all", "matchit")


def opt(default, help_text: str = ""):
    """A config option: its default and the one-line help printed by --defaults."""
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class DataOptions:
    path: str = opt("", "empty: the bundled reconstructed pseudo-cohort")
    study: str = opt("auto", "auto (the bundled study without --data, or when no role is "
                             "named), yang2025, or none")
    mapping: str = opt("", "TOML/JSON mapping file (see data_dictionary.md)")
    missing: str = opt("raise", "raise, or drop (complete-case; exclusions reported)")
    id: str = opt("", "patient id column (empty: row numbers)")
    time: str = opt("", "follow-up time column")
    event: str = opt("", "event column (1 = event, 0 = censored)")
    treatment: str = opt("", "treatment column (two groups)")
    treated: str = opt("", "the treatment column's value of the treated group (when not 1/yes)")
    covariates: tuple = opt((), "PS covariates (empty: the study's)")
    outcome_covariates: tuple = opt((), "extra covariates of the outcome models only")
    subgroups: tuple = opt((), "subgroup variables (empty: the study's)")
    candidates: tuple = opt((), "covariates the specification grid may add")
    categorical: tuple = opt((), "covariates to treat as categorical although numeric")
    post_baseline: tuple = opt((), "covariates measured after time zero (flagged)")
    treatment_start: str = opt("", "time from time zero to treatment start (immortal time)")
    time_unit: str = opt("", "days, weeks, months or years (empty: months, or the study's)")
    arm_labels: tuple = opt((), "two labels: treated, control")
    outcome: str = opt("", "outcome name, e.g. death")
    time_zero: str = opt("", "what time zero is, e.g. diagnosis")
    title: str = opt("", "report title")
    sheet: str = opt("", "Excel sheet (name or 0-based index)")
    header_row: int = opt(0, "0-based row of the header (Excel, CSV)")
    encoding: str = opt("utf-8-sig", "text encoding of CSV files")
    decimal: str = opt(".", "decimal mark of CSV files ('.' or ',')")


@dataclass(frozen=True)
class CrudeOptions:
    conf_type: str = opt("log-log", "KM CI scale: log-log, log (R default) or plain (SPSS)")
    landmarks: tuple = opt((), "landmark times in the data's unit (empty: the study's, or "
                               "round years within follow-up)")
    subgroup: str = opt("", "repeat the arm comparison per level (empty: the first subgroup)")
    ties: str = opt("efron", "Cox ties: efron or breslow")
    select_p: float = opt(0.05, "univariable P rule of the multivariable model")
    claims: str = opt("", "claims file; empty: the study's own claims (none for other data)")


@dataclass(frozen=True)
class AdjustOptions:
    covariates: tuple = opt((), "PS covariates (empty: [data] covariates or the study's)")
    caliper_sd: float = opt(defaults.CALIPER_SD, "SD of the logit PS (Austin 2011); 0 for "
                                                 "no caliper")
    ratio: int = opt(1, "controls per treated patient")
    replace: bool = opt(False, "match with replacement")
    order: str = opt("largest", "matching order: largest, smallest, random, data")
    bootstrap: int = opt(defaults.N_BOOT, "replicates; 0 skips the bootstrap")
    seed: int = opt(defaults.SEED, "bootstrap and random matching order")
    horizons: tuple = opt((), "RMST horizons in the data's unit (empty: the study's, or the "
                              "latest landmarks both arms reach)")
    primary: str = opt("auto", "primary IPTW estimand: auto (the first identified of ATE, ATT, "
                               "ATC, ATO), ATE, ATT, ATC or ATO")
    ties: str = opt("all", "PS ties in matching: all (order-free, tied partners share the "
                           "weight) or matchit (MatchIt's greedy rule; row order decides)")


@dataclass(frozen=True)
class SensitivityOptions:
    run: bool = opt(True, "run the sensitivity analyses")
    n_sim_ned: int = opt(2000, "simulations of the NED-correlation null (study yang2025)")
    seed: int = opt(defaults.SEED, "specification grid (random order) and simulations")


@dataclass(frozen=True)
class ReportOptions:
    formats: tuple = opt(("png",), "figure files written besides the HTML: png, svg, pdf; "
                                   "[\"none\"] for no figures")
    jobs: int = opt(1, "parallel workers (bootstrap, specification grid)")
    quiet: bool = opt(False, "no progress output")


@dataclass(frozen=True)
class Config:
    data: DataOptions = field(default_factory=DataOptions)
    crude: CrudeOptions = field(default_factory=CrudeOptions)
    adjust: AdjustOptions = field(default_factory=AdjustOptions)
    sensitivity: SensitivityOptions = field(default_factory=SensitivityOptions)
    report: ReportOptions = field(default_factory=ReportOptions)

    def to_dict(self) -> dict:
        return asdict(self)

    def updated(self, section: str, **changes) -> "Config":
        """A copy with some options of one section changed (None values are ignored)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        return replace(self, **{section: replace(getattr(self, section), **changes)})


def _coerce(name: str, default, value, problems):
    if isinstance(default, bool):
        if not isinstance(value, bool):
            problems.append(f"{name}: expected true or false, found {value!r}.")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, list):
            problems.append(f"{name}: expected a list, found {value!r}.")
            return default
        return tuple(value)
    if isinstance(default, (int, float)) and not isinstance(value, (int, float)):
        problems.append(f"{name}: expected a number, found {value!r}.")
        return default
    if isinstance(default, str) and not isinstance(value, str):
        problems.append(f"{name}: expected text, found {value!r}.")
        return default
    return type(default)(value) if isinstance(default, float) else value


def load_config(path: str | Path | None = None) -> Config:
    """Defaults, overridden by the TOML file at ``path`` when given."""
    config = Config()
    if path is None:
        return config
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CohortError([f"Config file {path}: not found."], header="Cannot read the config:") \
            from exc
    except tomllib.TOMLDecodeError as exc:
        raise CohortError([f"Config file {path}: not valid TOML ({exc})."],
                          header="Cannot read the config:") from exc
    problems = []
    sections = {f.name: f for f in fields(Config)}
    for section, values in raw.items():
        if section not in sections or not isinstance(values, dict):
            problems.append(f"[{section}]: unknown section; use {sorted(sections)}.")
            continue
        current = getattr(config, section)
        known = {f.name: getattr(current, f.name) for f in fields(current)}
        changes = {}
        for key, value in values.items():
            if key not in known:
                problems.append(f"[{section}] {key}: unknown option; use {sorted(known)}.")
                continue
            changes[key] = _coerce(f"[{section}] {key}", known[key], value, problems)
        config = replace(config, **{section: replace(current, **changes)})
    if config.adjust.primary not in PRIMARY_CHOICES:
        problems.append(f"[adjust] primary: {config.adjust.primary!r}; use one of "
                        f"{list(PRIMARY_CHOICES)}.")
    if config.adjust.ties not in TIES_CHOICES:
        problems.append(f"[adjust] ties: {config.adjust.ties!r}; use one of "
                        f"{list(TIES_CHOICES)}.")
    if problems:
        raise CohortError(problems, header=f"Config file {path}:")
    return config


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def defaults_toml() -> str:
    """The default configuration as TOML, each option with its help text."""
    lines = ["# causal-hcc configuration: every option with its default.",
             "# Pass with `causal-hcc report --config FILE`; command-line flags override it.", ""]
    for section in fields(Config):
        options = section.default_factory()
        lines.append(f"[{section.name}]")
        for f in fields(options):
            note = f"  # {f.metadata['help']}" if f.metadata.get("help") else ""
            lines.append(f"{f.name} = {_toml_value(getattr(options, f.name))}{note}")
        lines.append("")
    return "\n".join(lines)
