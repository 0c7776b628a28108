"""One command's run: its warnings (tagged by stage and estimand) and its output folder
(staged beside ``--out`` and moved into place when the run has finished)."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path

from causal_hcc.version import __version__
from causal_hcc.errors import CausalHccWarning


class Run:
    """What one command collects while it runs: warnings, sorted and tagged.

    ``stage(name)`` records every warning raised inside it; the package's own
    (:class:`CausalHccWarning`) are analysis warnings of that stage, anything else is a
    library warning. :meth:`tagged` names the stage and, for the adjusted analyses, the
    estimand a warning belongs to (found from the notes each weighting or matching result
    keeps): ``"[adjust, IPTW ATT] Extreme propensity-score weights: ..."``.
    """

    def __init__(self):
        self.analysis: list[tuple[str, str]] = []
        self.library: list = []

    @contextmanager
    def stage(self, name: str):
        # Recorded even when the stage fails: a warning raised before an error (e.g. the
        # separation that later leaves no match) is often what explains it.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield
            finally:
                for w in caught:
                    if issubclass(w.category, CausalHccWarning):
                        self.analysis.append((name, str(w.message)))
                    else:
                        self.library.append(w)

    def messages(self, stage: str) -> list[str]:
        return list(dict.fromkeys(m for s, m in self.analysis if s == stage))

    def tagged(self, effects=None, stages=None) -> list[str]:
        return list(dict.fromkeys(f"[{warning_context(s, m, effects)}] {m}"
                                  for s, m in self.analysis
                                  if stages is None or s in stages))

    def library_warnings(self, outer=()) -> list[str]:
        return list(dict.fromkeys(
            f"{w.category.__name__}: {w.message} ({Path(w.filename).name}:{w.lineno})"
            for w in (*self.library, *outer)))


def warning_context(stage: str, message: str, effects) -> str:
    """``stage`` or ``stage, METHOD ESTIMAND`` for a warning of the adjusted analyses."""
    if effects is None or stage not in ("adjust", "sensitivity"):
        return stage
    found = [f"IPTW {est}" for est, w in effects.weights.items() if message in w.notes]
    if message in effects.matched.notes:
        found.append(f"PSM {effects.matched.estimand}")
    return ", ".join([stage, *found])


def out_dir(args, cohort, default: str) -> Path:
    """Output folder; for the bundled cohort the default name says it is pseudo-data.

    A folder holds one run (it is replaced whole when a run completes), so each command
    has its own default: ``results/crude``, ``results/adjust``, ``results/sensitivity``.
    """
    if args.out:
        return Path(args.out)
    base, _, command = default.partition("/")
    base = f"{base}_reconstructed_pseudodata" if cohort.reconstructed else base
    return Path(base, command) if command else Path(base)


def input_files(args, config=None) -> dict:
    """The run's input files, by option: none may be overwritten by its output."""
    data = getattr(config, "data", None)
    return {"--data": getattr(args, "data", None) or getattr(data, "path", None),
            "--mapping": getattr(args, "mapping", None) or getattr(data, "mapping", None),
            "--config": getattr(args, "config", None),
            "--claims": getattr(args, "claims", None)
            or getattr(getattr(config, "crude", None), "claims", None)}


def staged_output(args, out: Path, config=None):
    """The output directory, staged (see :class:`causal_hcc.reporting.OutputDir`)."""
    from causal_hcc.reporting import OutputDir
    return OutputDir(out, input_files(args, config))


def commit_output(staged, args, run, cohort, *, effects=None, extra=None) -> list[Path]:
    """Write manifest.json and move the run's files into place."""
    info = {"tool": "causal-hcc", "package_version": __version__,
            "command": f"causal-hcc {args.command}", "argv": list(args.argv),
            "data": cohort.source, "data_sha256": cohort.sha256,
            "reconstructed": cohort.reconstructed, "n_read": cohort.n_read,
            "n_analysed": cohort.n, "n_excluded": cohort.n_excluded,
            "warnings": run.tagged(effects),
            "library_warnings": run.library_warnings(args.outer_warnings),
            **(extra or {})}
    return staged.commit(info)


def wrote_line(out: Path, files, what: str, cohort) -> str:
    return (f"\nWrote {len(files)} files to {out}/ ({what}, exclusions.csv, manifest.json).\n"
            + "".join(f"{note}.\n" for note in parquet_notes(files))
            + f"Rows excluded: {cohort.n_excluded} of {cohort.n_read}"
            + (" (listed in exclusions.csv)." if cohort.n_excluded else "."))


def parquet_notes(files) -> list[str]:
    """What was written as Parquet instead of CSV, and why (one line per table)."""
    paths = [Path(f) for f in files if Path(f).suffix == ".parquet"]
    if not paths:
        return []
    from causal_hcc.reporting.tabular import parquet_note
    return [n for n in map(parquet_note, paths) if n]
