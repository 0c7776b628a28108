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
