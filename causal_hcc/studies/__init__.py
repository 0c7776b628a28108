"""Study profiles: everything that knows one particular paper, on top of the generic engine.

A profile supplies default roles and labels, its data dictionary's codings and checks, and
the paper-specific analyses (claims, reconstruction, what-ifs). The engine never imports a
profile; the CLI and the Python API pick one (``--study``), and the bundled cohort's is
:mod:`causal_hcc.studies.yang2025`.
"""

from __future__ import annotations

STUDIES = ("yang2025",)


def get_study(name: str):
    """The profile module of study ``name`` (e.g. ``"yang2025"``)."""
    if name not in STUDIES:
        raise ValueError(f"Unknown study {name!r}; known studies: {list(STUDIES)}.")
    from causal_hcc.studies import yang2025
    return yang2025


def reconstruction_label(sha256: str | None) -> str | None:
    """The provenance line of a study's bundled reconstruction whose file has this
    SHA-256, or None.

    A bundled pseudo-cohort read from its path (``--data``), or from a byte-identical
    copy, is still reconstructed pseudo-data, whatever profile or roles it is read with;
    every artefact made from it must say so.
    """
    if not sha256:
        return None
    for name in STUDIES:
        study = get_study(name)
        if sha256 == study.bundled_sha256():
            return study.RECONSTRUCTED_LABEL
    return None
