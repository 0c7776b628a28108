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

from causal_hcc.errors import CohortError


def opt(default, help_text: str = ""):
    """A config option: its default and the one-line help printed by --defaults."""
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class DataOptions:
    path: str = opt("", "empty: the bundled reconstructed pseudo-cohort")
    mapping: str = opt("", "TOML/JSON mapping file (see data_dictionary.md)")
    missing: str = opt("raise", "raise, or drop (complete-case; exclusions reported)")


@dataclass(frozen=True)
class CrudeOptions:
    conf_type: str = opt("log-log", "KM CI scale: log-log, log (R default) or plain (SPSS)")
    landmarks: tuple = opt((12.0, 24.0, 36.0, 60.0), "months")
    subgroup: str = opt("oligometastatic", "repeat the arm comparison per level")
    ties: str = opt("efron", "Cox ties: efron or breslow")
    select_p: float = opt(0.05, "univariable P rule of the multivariable model")
    claims: str = opt("", "claims file; empty: the paper's own claims")


@dataclass(frozen=True)
class AdjustOptions:
    covariates: tuple = opt(("ecog", "intrahepatic_ccr", "vascular_invasion"),
                            "PS covariates (data_dictionary.md names)")
    caliper_sd: float = opt(0.2, "SD of the logit PS (Austin 2011); 0 for no caliper")
    ratio: int = opt(1, "controls per treated patient")
    replace: bool = opt(False, "match with replacement")
    order: str = opt("largest", "matching order: largest, smallest, random, data")
    bootstrap: int = opt(1000, "replicates; 0 skips the bootstrap")
    seed: int = opt(20250710, "bootstrap and random matching order")


@dataclass(frozen=True)
class SensitivityOptions:
    run: bool = opt(True, "run the sensitivity analyses")
    n_sim_ned: int = opt(2000, "simulations of the NED-correlation null")
    seed: int = opt(20250117, "specification grid (random order) and simulations")


@dataclass(frozen=True)
class ReportOptions:
    formats: tuple = opt(("png", "svg"), "figure files written besides the HTML")
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
