"""The fast text reader (pyarrow) gives exactly the frame of the reference reader (pandas'
Python engine, which defines read_table's contract), and registry-sized files go through
pyarrow."""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causal_hcc.data import text
from causal_hcc.data.io import read_table


def _both(path, sep=None, encoding="utf-8-sig", header_row=0, decimal="."):
    fast = text.read_text(path, sep, encoding, header_row, decimal)
    with warnings.catch_warnings():
        # the reference's decimal check downcasts with fillna (a pandas FutureWarning)
        warnings.simplefilter("ignore", FutureWarning)
        ref = text.read_text_python(path, sep, encoding, header_row, decimal)
    return fast, ref


def _same(fast, ref):
    assert list(fast.columns) == list(ref.columns)
    assert fast.shape == ref.shape
    assert all(fast[c].dtype == object for c in fast.columns)
    pd.testing.assert_frame_equal(fast, ref, check_dtype=True)
    # missing is NaN (not None) in both, present cells are str
    for c in range(fast.shape[1]):
        a, b = fast.iloc[:, c].tolist(), ref.iloc[:, c].tolist()
        assert [type(v) for v in a] == [type(v) for v in b]


def test_whitespace_set_is_what_str_strip_removes():
    expected = "".join(c for c in map(chr, range(0x110000)) if c.isspace())
    assert text.WHITESPACE == expected


CASES = {
    "plain": "id,t,e\n001,1.5,1\n002,2,0\n",
    "bom_spaces_na_labels": "\ufeff id ,\xa0grp\xa0,x\n P1 , None ,NA\n P2 ,null, \n,,\n",
    "quoted": 'a,b\n"x, y","he said ""hi"""\n"",  \n"multi\nline",z\n',
    "semicolon": "a;b;c\n1;2;3\n4;5;6\n",
    "blank_lines": "a,b\n\n1,2\n\n\n3,4\n",
    "unicode_spaces": "a,b\n\u3000x\u2003,\x1cy\x1f\n",
    "header_row_2": "title line,\nnotes,\nid,val\nA,1\nB,2\n",
    "only_header": "a,b,c\n",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fast_reader_matches_the_reference(tmp_path, name):
    path = tmp_path / f"{name}.csv"
    path.write_text(CASES[name], encoding="utf-8")
    fast, ref = _both(path, header_row=2 if name == "header_row_2" else 0)
    _same(fast, ref)


def test_decimal_comma_matches_the_reference(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("id;t;lab\nA;1,5;x,1\nB;2;y\nC;;3,25\n", encoding="utf-8")
    fast, ref = _both(path, decimal=",")
    _same(fast, ref)
    assert fast["t"].isna().tolist() == [False, False, True]
    assert fast["t"].tolist()[:2] == ["1.5", "2"] and fast["lab"].tolist()[0] == "x,1"


def test_latin1_and_tsv(tmp_path):
    path = tmp_path / "l.tsv"
    path.write_bytes("nom\tâge\nÉlodie\t 30 \n".encode("latin-1"))
    _same(*_both(path, sep="\t", encoding="latin-1"))


def test_ragged_rows_fall_back_to_the_reference(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("a,b,c\n1,2\n3,4,5\n", encoding="utf-8")
    fast, ref = _both(path)
    _same(fast, ref)
    assert fast.iloc[0].tolist()[:2] == ["1", "2"] and pd.isna(fast.iloc[0, 2])


def test_a_large_file_is_read_by_pyarrow(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    n = 50_000
    frame = pd.DataFrame({"id": [f"{i:07d}" for i in range(n)],
                          "t": np.round(rng.exponential(10, n), 1).astype(str),
                          "g": rng.choice([" a", "b ", "", "NA"], n)})
    path = tmp_path / "big.csv"
    frame.to_csv(path, index=False)

    def refuse(*args, **kwargs):
        raise AssertionError("the reference reader was used")
    monkeypatch.setattr(text, "read_text_python", refuse)
    fast = read_table(path)
    monkeypatch.undo()
    _same(fast, text.read_text_python(path, None, "utf-8-sig", 0, "."))
    assert fast["id"].iloc[7] == "0000007"


CELL = st.text(alphabet=st.sampled_from(list('ab1,.; "\t\n\r') + ["\xa0", "\u3000", "é"]),
               max_size=6)


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.lists(CELL, min_size=3, max_size=3), min_size=1, max_size=6))
def test_fast_reader_matches_the_reference_on_any_quoted_table(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("p") / "p.csv"
    import csv
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL)
        writer.writerow(["h1", "h2", "h3"])
        writer.writerows(rows)
    try:
        ref = text.read_text_python(path, ",", "utf-8-sig", 0, ".")
    except Exception:
        return  # the reference itself rejects the file: nothing to compare
    fast = text.read_text(path, ",", "utf-8-sig", 0, ".")
    _same(fast, ref)
