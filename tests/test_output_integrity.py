"""Nothing lost, nothing mixed: output directories, exclusions, warnings (issue 14).

Reproductions from the issue, on the bundled cohort (``B`` = its CSV):
- a complete run, then a second run on other data into the same directory, killed after
  ~2 s: the directory still holds the first run, byte for byte (SHA-256 of every file);
- two runs into one directory at once: the second exits 2 naming the first's pid;
- ``adjust --data d/propensity.csv --out d`` is refused before anything runs;
- ``adjust --missing drop`` on B with 3 blanked cells: exclusions.csv, the console and
  every JSON say 3 of 76 rows were excluded;
- the extreme-weight / ESS warnings reach the console, the JSON and the HTML, tagged
  with stage and estimand; library warnings never reach stderr with --quiet.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

import causal_hcc.cli.commands as commands
from causal_hcc.cli import main
from causal_hcc.reporting import MANIFEST

BUNDLED = (Path(commands.__file__).parents[1] / "studies" / "yang2025" / "bundled"
           / "reconstructed_pseudo_cohort.csv")
FAST = ["--bootstrap", "0", "--formats", "none", "--quiet"]


def _hashes(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def dropped_csv(tmp_path_factory) -> Path:
    """B with ecog blanked in 3 rows: 73 of 76 analysed with --missing drop."""
    frame = pd.read_csv(BUNDLED, dtype=str, keep_default_na=False)
    frame.loc[[4, 20, 50], "ecog"] = ""
    path = tmp_path_factory.mktemp("data") / "dropped.csv"
    frame.to_csv(path, index=False)
    return path


def _start_long_run(out: Path, data: Path) -> subprocess.Popen:
    """A second run on other data (a long bootstrap), in its own process; returns once it
    holds the output lock, i.e. is writing into its staging directory."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "causal_hcc.cli", "adjust", "--data", str(data),
         "--missing", "drop", "--bootstrap", "20000", "--formats", "none", "--quiet",
         "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lock = out.parent / f"{out.name}.lock"
    deadline = time.monotonic() + 60
    while not lock.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the second run never took the lock"
        time.sleep(0.05)
    return proc


def _stop(proc: subprocess.Popen, sig) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
    proc.wait(timeout=30)
    proc.stderr.close()


# ----------------------------------------------------------------------------- atomic
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_run_leaves_the_previous_run_exactly_as_it_was(tmp_path, dropped_csv, sig):
    out = tmp_path / "run"
    assert main(["adjust", "--out", str(out), *FAST]) == 0
    before = _hashes(out)
    assert MANIFEST in before and "effects.json" in before
    proc = _start_long_run(out, dropped_csv)
    time.sleep(2)
    assert proc.poll() is None, "the second run ended before it could be killed"
    _stop(proc, sig)
    assert _hashes(out) == before  # nothing of the killed run, nothing lost
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name != "run")
    if sig == signal.SIGTERM:  # unwound: staging directory and lock removed
        assert leftovers == []
    # SIGKILL leaves a stale lock and a hidden staging directory: the next run takes
    # the lock over, removes the leftovers and replaces the directory.
    assert main(["adjust", "--data", str(dropped_csv), "--missing", "drop", "--out",
                 str(out), *FAST]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["n_excluded"] == 3 and manifest["n_analysed"] == 73


def test_concurrent_runs_into_one_directory_cannot_mix(tmp_path, dropped_csv, capsys):
    out = tmp_path / "run"
    proc = _start_long_run(out, dropped_csv)
    try:
        assert main(["adjust", "--out", str(out), *FAST]) == 2
        err = capsys.readouterr().err
        assert f"another causal-hcc run is writing to {out} (pid {proc.pid}" in err
        assert not out.exists()
    finally:
        _stop(proc, signal.SIGTERM)


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "run"
    (tmp_path / "run.lock").write_text(f"{dead.pid}\n")
    assert main(["adjust", "--out", str(out), *FAST]) == 0
    assert not (tmp_path / "run.lock").exists() and (out / "effects.json").exists()


def test_a_run_replaces_the_whole_directory_and_lists_its_files(tmp_path):
    out = tmp_path / "run"
    assert main(["crude", "--out", str(out), "--formats", "none"]) == 0
    assert (out / "crude.json").exists()
    assert main(["adjust", "--out", str(out), *FAST]) == 0
    manifest = json.loads((out / MANIFEST).read_text())
    assert not (out / "crude.json").exists()  # one run per directory, never mixed
    assert manifest["command"] == "causal-hcc adjust"
    assert _hashes(out) == dict(manifest["files"], **{MANIFEST: _hashes(out)[MANIFEST]})


def test_files_no_run_wrote_are_never_deleted(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    assert main(["adjust", "--out", str(out), *FAST]) == 2
    err = capsys.readouterr().err
    assert "notes.txt" in err and "no causal-hcc run wrote" in err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


# ----------------------------------------------------------------------------- inputs
def test_out_never_overwrites_the_data_file(tmp_path, capsys, monkeypatch):
    d = tmp_path / "d"
    d.mkdir()
    data = d / "propensity.csv"
    data.write_bytes(BUNDLED.read_bytes())
    loaded = []
    monkeypatch.setattr(commands, "load_from_args", lambda *a, **k: loaded.append(1))
    assert main(["adjust", "--data", str(data), "--out", str(d), *FAST]) == 2
    err = capsys.readouterr().err
    assert str(data) in err and "--data" in err and "input file" in err
    assert not loaded  # refused before anything ran
    assert data.read_bytes() == BUNDLED.read_bytes() and sorted(os.listdir(d)) == \
        ["propensity.csv"]
    # --out naming the data file itself, and a mapping file inside --out
    assert main(["crude", "--data", str(data), "--out", str(data)]) == 2
    assert "--data" in capsys.readouterr().err
    mapping = tmp_path / "o" / "map.toml"
    mapping.parent.mkdir()
    mapping.write_text("[columns]\n")
    assert main(["adjust", "--mapping", str(mapping), "--out", str(mapping.parent),
                 *FAST]) == 2
    assert "--mapping" in capsys.readouterr().err and mapping.exists()


# ----------------------------------------------------------------------------- exclusions
def test_exclusions_are_recorded_everywhere(tmp_path, dropped_csv, capsys):
    out = tmp_path / "adj"
    assert main(["adjust", "--data", str(dropped_csv), "--missing", "drop", "--out", str(out),
                 *FAST]) == 0
    assert "Rows excluded: 3 of 76 (listed in exclusions.csv)." in capsys.readouterr().out
    excluded = pd.read_csv(out / "exclusions.csv", dtype=str)
    ids = pd.read_csv(BUNDLED, dtype=str)["patient_id"].iloc[[4, 20, 50]]
    assert excluded["patient_id"].tolist() == ids.tolist()
    assert excluded["reason"].str.contains("ecog").all()
    assert {r["n_excluded"] for r in json.loads((out / "effects.json").read_text())} == {3}
    assert json.loads((out / "effects_context.json").read_text())["n_excluded"] == 3
    assert json.loads((out / MANIFEST).read_text())["n_excluded"] == 3
    # crude and report say the same; no exclusions gives a header-only exclusions.csv
    rep = tmp_path / "rep"
    assert main(["report", "--data", str(dropped_csv), "--missing", "drop", "--out", str(rep),
                 "--no-sensitivity", *FAST]) == 0
    assert json.loads((rep / "crude.json").read_text())["n_excluded"] == 3
    assert json.loads((rep / "run.json").read_text())["n_excluded"] == 3
    assert len(pd.read_csv(rep / "exclusions.csv")) == 3
    none = tmp_path / "none"
    assert main(["crude", "--out", str(none), "--formats", "none"]) == 0
    frame = pd.read_csv(none / "exclusions.csv")
    assert frame.empty and list(frame.columns) == ["data_provenance", "row", "patient_id",
                                                   "reason"]


def test_sensitivity_json_records_exclusions(tmp_path, dropped_csv):
    out = tmp_path / "sens"
    assert main(["sensitivity", "--data", str(dropped_csv), "--missing", "drop", "--out",
                 str(out), "--n-sim-ned", "50", "--formats", "none", "--quiet"]) == 0
    payload = json.loads((out / "sensitivity.json").read_text())
    assert payload["n_excluded"] == 3 and (out / "exclusions.csv").exists()


# ----------------------------------------------------------------------------- read-only
@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only directories")
def test_read_only_output_directory_exits_2(tmp_path, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        assert main(["adjust", "--out", str(out / "run"), *FAST]) == 2
    finally:
        out.chmod(0o755)
    assert str(out) in capsys.readouterr().err


def test_unwritable_output_directory_exits_2_naming_it(tmp_path, capsys, monkeypatch):
    # As root (CI containers) permissions do not bind; simulate what the system says.
    import causal_hcc.reporting.output as output
    out = tmp_path / "ro"
    monkeypatch.setattr(output.os, "access", lambda path, mode: Path(path) != tmp_path)
    assert main(["adjust", "--out", str(out), *FAST]) == 2
    err = capsys.readouterr().err
    assert f"the output directory {tmp_path} is not writable" in err
    assert "internal error" not in err
    monkeypatch.undo()

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path))
    monkeypatch.setattr(output.tempfile, "mkdtemp", refuse)
    assert main(["adjust", "--out", str(out), *FAST]) == 2
    err = capsys.readouterr().err
    assert f"cannot write {tmp_path}: Permission denied" in err and "internal" not in err


# ----------------------------------------------------------------------------- warnings
def test_weight_warnings_are_tagged_and_reach_console_json_and_html(tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["report", "--out", str(out), "--no-sensitivity", *FAST]) == 0
    stdout = capsys.readouterr().out
    tag = "[adjust, IPTW ATT] Extreme propensity-score weights"
    assert f"Warning: {tag}" in stdout
    assert any(w.startswith(tag) for w in json.loads((out / "run.json").read_text())["warnings"])
    assert any(w.startswith(tag) for w in
               json.loads((out / "effects_context.json").read_text())["warnings"])
    assert tag in (out / "report.html").read_text()
    assert "effective sample size" in (out / "report.html").read_text()


def test_library_warnings_are_caught_at_the_boundary(tmp_path, capsys, monkeypatch):
    original = commands.run_adjust

    def noisy(*args, **kwargs):
        warnings.warn("DataFrame.fillna with 'method' is deprecated", FutureWarning)
        warnings.warn("Glyph 26085 missing from current font.", UserWarning)
        warnings.warn("invalid value encountered in divide", RuntimeWarning)
        return original(*args, **kwargs)
    monkeypatch.setattr(commands, "run_adjust", noisy)
    out = tmp_path / "adj"
    assert main(["adjust", "--out", str(out), *FAST]) == 0
    err = capsys.readouterr().err
    assert "Warning" not in err and "Glyph" not in err  # --quiet: nothing raw on stderr
    recorded = json.loads((out / MANIFEST).read_text())["library_warnings"]
    assert any(w.startswith("FutureWarning: DataFrame.fillna") for w in recorded)
    assert any(w.startswith("UserWarning: Glyph 26085") for w in recorded)
    assert any(w.startswith("RuntimeWarning: invalid value") for w in recorded)
    assert not any("Glyph" in w for w in json.loads((out / MANIFEST).read_text())["warnings"])
    # without --quiet they are shown, one line each, as recorded library warnings
    assert main(["adjust", "--out", str(out), "--bootstrap", "0", "--formats", "none"]) == 0
    assert "library warning (recorded in manifest.json): FutureWarning" in \
        capsys.readouterr().err


# ----------------------------------------------------------------------------- options
@pytest.mark.parametrize("command, option, value, allowed", [
    ("adjust", "--caliper", "-0.2", ">= 0"),
    ("adjust", "--caliper", "inf", ">= 0"),
    ("adjust", "--caliper", "abc", "not a number"),
    ("adjust", "--ratio", "0", ">= 1"),
    ("adjust", "--jobs", "0", ">= 1"),
    ("adjust", "--jobs", "-3", ">= 1"),
    ("report", "--jobs", "0", ">= 1"),
    ("adjust", "--bootstrap", "-5", ">= 0"),
    ("report", "--bootstrap", "-5", ">= 0"),
    ("adjust", "--formats", "bmp", "png, svg, pdf"),
    ("crude", "--formats", "", "png, svg, pdf"),
    ("sensitivity", "--n-sim-ned", "0", ">= 1"),
])
def test_bad_option_values_exit_2_naming_the_option_and_range(command, option, value,
                                                              allowed, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, option, value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert option in err and allowed in err and "internal error" not in err


def test_caliper_0_means_no_caliper_and_formats_none_writes_no_figures(tmp_path):
    out = tmp_path / "adj"
    assert main(["adjust", "--caliper", "0", "--ties", "matchit", "--out", str(out),
                 *FAST]) == 0
    matching = json.loads((out / "effects_context.json").read_text())["matching"]
    assert matching["caliper_sd"] in (None, 0) and matching["caliper_logit"] in (None, 0)
    # no caliper, MatchIt's greedy rule: every treated patient gets a control while controls
    # last (1:1, 36 controls)
    assert matching["n_matched_treated"] == 36
    assert not [p for p in out.iterdir() if p.suffix in (".png", ".svg", ".pdf")]
