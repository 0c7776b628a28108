"""Per-patient tables at registry scale (issue 12): written as Parquet when the CSV would
exceed a threshold (about 100 MB by default), estimated without rendering the CSV, and the
command says so on the console."""

import contextlib
import io

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from causal_hcc.cli import main
from causal_hcc.reporting import serialise, tabular, write_csv


@pytest.fixture
def table():
    rng = np.random.default_rng(3)
    n = 5_000
    return pd.DataFrame({"data_provenance": "Simulated data, not patients",
                         "patient_id": [f"S{i:06d}" for i in range(n)],
                         "ps": rng.uniform(size=n), "treated": rng.integers(0, 2, n),
                         "matched_set": pd.array(rng.integers(0, 50, n), dtype="Int64")})


def test_the_estimate_is_close_to_the_csv_and_exact_for_small_frames(table):
    exact = len(table.to_csv(index=False).encode())
    estimate = tabular.estimate_csv_bytes(table, sample=500)
    assert abs(estimate - exact) / exact < 0.02
    small = table.iloc[:300]
    assert tabular.estimate_csv_bytes(small) == len(small.to_csv(index=False).encode())
    assert tabular.estimate_csv_bytes(table.iloc[:0]) == len(table.iloc[:0].to_csv(
        index=False).encode())


def test_below_the_threshold_the_csv_is_written_as_before(tmp_path, table):
    path = write_csv(table, tmp_path / "propensity.csv")
    assert path == tmp_path / "propensity.csv"
    assert path.read_text() == table.to_csv(index=False)
    assert tabular.parquet_note(path) is None


def test_above_the_threshold_parquet_is_written_with_the_same_content(tmp_path, table):
    path = write_csv(table, tmp_path / "propensity.csv", parquet_above_bytes=100_000)
    assert path == tmp_path / "propensity.parquet"
    assert not (tmp_path / "propensity.csv").exists()
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, table)
    assert list(back.columns)[0] == "data_provenance"
    meta = pq.read_metadata(path).metadata
    assert meta[b"data_provenance"] == b"Simulated data, not patients"
    size = len(table.to_csv(index=False).encode())
    note = tabular.parquet_note(path)
    assert note == (f"propensity.parquet: 5,000 rows, written as Parquet because the CSV "
                    f"would be ~{int(meta[tabular.ESTIMATE_KEY]) / 1e6:,.0f} MB")
    assert abs(int(meta[tabular.ESTIMATE_KEY]) - size) / size < 0.02


def test_mixed_object_columns_are_written_as_text(tmp_path):
    frame = pd.DataFrame({"a": [1, "x", None, 2.5] * 50})
    path = write_csv(frame, tmp_path / "m.csv", parquet_above_bytes=10)
    assert path.suffix == ".parquet"
    assert pd.read_parquet(path)["a"].tolist()[:4] == ["1", "x", None, "2.5"]


def test_the_command_says_what_it_wrote_as_parquet(tmp_path, monkeypatch):
    monkeypatch.setattr(tabular, "PARQUET_ABOVE_BYTES", 2_000)
    out = tmp_path / "adj"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["adjust", "--bootstrap", "0", "--formats", "none", "--quiet",
                     "--out", str(out)]) == 0
    text = buffer.getvalue()
    assert (out / "propensity.parquet").exists() and not (out / "propensity.csv").exists()
    assert "propensity.parquet: 76 rows, written as Parquet because the CSV would be ~0 MB" \
        in text
    frame = pd.read_parquet(out / "propensity.parquet")
    assert frame["data_provenance"].str.contains("RECONSTRUCTED PSEUDO-DATA").all()
    manifest = (out / "manifest.json").read_text()
    assert "propensity.parquet" in manifest


def test_serialise_write_csv_is_the_same_writer(tmp_path, table):
    path = serialise.write_csv(table, tmp_path / "t.csv", parquet_above_bytes=100_000)
    assert path.suffix == ".parquet"
    assert serialise.write_csv(table, tmp_path / "u.csv").suffix == ".csv"


# ---------------------------------------------------------------- the fast CSV writer
def _awkward(n=3_000, seed=5):
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2 ** 63, n, dtype=np.int64).view(np.float64)
    floats = np.where(np.isfinite(bits), bits, 1.5)
    floats[:12] = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-4, 9.99e-5, 1e16, 1e15, 12.0,
                   5e-324, 0.1]
    text = rng.choice(["plain", "with, comma", 'say "hi"', "", "ünïcode ✓", " padded "], n)
    return pd.DataFrame({
        "data_provenance": "Simulated data, not patients",      # a comma: quoted
        "floats": floats, "uniform": rng.uniform(size=n), "rounded": np.round(
            rng.normal(size=n) * 100, 1), "whole": rng.integers(-5, 5, n).astype(float),
        "ints": rng.integers(-10 ** 12, 10 ** 12, n), "small": rng.integers(0, 3, n)
        .astype(np.int8), "flags": rng.integers(0, 2, n).astype(bool),
        "nullable": pd.array(np.where(rng.random(n) < 0.2, None, rng.integers(0, 50, n)),
                             dtype="Int64"),
        "text": np.where(rng.random(n) < 0.1, None, text).astype(object),
        "na_text": pd.Series((["a", np.nan, pd.NA] * n)[:n], dtype=object),
        'odd "name", here': rng.uniform(size=n)})


def test_the_fast_csv_is_what_pandas_writes(tmp_path, monkeypatch):
    frame = _awkward()
    path = write_csv(frame, tmp_path / "a.csv")
    assert tabular._write_csv_fast(frame, tmp_path / "b.csv")          # not left to pandas
    assert path.read_bytes() == (tmp_path / "b.csv").read_bytes() \
        == frame.to_csv(index=False).encode("utf-8")
    monkeypatch.setattr(tabular, "CHUNK_ROWS", 701)                   # several chunks
    write_csv(frame, tmp_path / "c.csv")
    assert (tmp_path / "c.csv").read_bytes() == frame.to_csv(index=False).encode("utf-8")
    for empty in (frame.iloc[:0], frame.iloc[:1]):
        write_csv(empty, tmp_path / "d.csv")
        assert (tmp_path / "d.csv").read_text() == empty.to_csv(index=False)


@pytest.mark.parametrize("change", ["one_column", "line_break", "mixed_objects",
                                    "category", "float32", "number_labels"])
def test_what_the_fast_writer_cannot_render_is_left_to_pandas(tmp_path, change):
    frame = _awkward(n=50)
    if change == "one_column":
        frame = frame[["floats"]]
    elif change == "line_break":
        frame.loc[3, "text"] = "two\nlines"
    elif change == "mixed_objects":
        frame["text"] = [1, "a", 2.5, None, True] * 10
    elif change == "category":
        frame["text"] = frame["text"].astype("category")
    elif change == "float32":
        frame["uniform"] = frame["uniform"].astype(np.float32)
    else:
        frame.columns = range(frame.shape[1])
    assert not tabular._write_csv_fast(frame, tmp_path / "x.csv")
    assert write_csv(frame, tmp_path / "y.csv").read_text() == frame.to_csv(index=False)
