"""Start-up (issue 12): the package import and the CLI's parser load no heavy library, and
the verbs stay the verbs whatever was imported before or after.

Every check runs in a fresh interpreter (``sys.modules`` of this test process is full
already); none is timed.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
HEAVY = ("numpy", "pandas", "scipy", "matplotlib")


def _run(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _loaded(after: str) -> list:
    return _run(f"import sys, json\n{after}\n"
                f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")


def test_package_import_loads_no_heavy_library():
    assert _loaded("import causal_hcc") == []


@pytest.mark.parametrize("argv", [["--help"], ["adjust", "--help"], ["report", "--help"],
                                  ["--version"]])
def test_cli_help_and_version_load_no_heavy_library(argv):
    code = ("import contextlib, io\nfrom causal_hcc.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n"
            f"        main({argv!r})\n"
            "    except SystemExit as exc:\n"
            "        assert exc.code == 0, exc.code\n")
    assert _loaded(code) == []


def test_building_the_parser_loads_no_heavy_library():
    assert _loaded("from causal_hcc.cli.main import build_parser\nbuild_parser()\n"
                   "import causal_hcc.reporting, causal_hcc.data, causal_hcc.config") == []


def test_the_console_script_prints_help():
    done = subprocess.run([sys.executable, "-m", "causal_hcc.cli", "adjust", "--help"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0
    assert "--formats" in done.stdout and "png (default)" in " ".join(done.stdout.split())


#: Import orders after which ch.<verb> must still be the function of causal_hcc.api.
ORDERS = [
    "import causal_hcc as ch",
    "import causal_hcc.sensitivity\nimport causal_hcc as ch",
    "import causal_hcc as ch\nimport causal_hcc.sensitivity",
    "import causal_hcc as ch\nch.sensitivity\nimport causal_hcc.sensitivity.grid",
    "from causal_hcc.sensitivity import run_sensitivity\nimport causal_hcc as ch",
    "import causal_hcc.reporting, causal_hcc.effects, causal_hcc.sensitivity.analysis\n"
    "import causal_hcc as ch",
    "import causal_hcc as ch\nimport importlib\n"
    "importlib.import_module('causal_hcc.sensitivity.evalues')",
]


@pytest.mark.parametrize("order", ORDERS)
def test_verbs_resolve_to_the_functions_in_any_import_order(order):
    got = _run(
        f"{order}\nimport json, types, causal_hcc, causal_hcc.api as api\n"
        "import causal_hcc.sensitivity as via_import\n"
        "from causal_hcc import sensitivity as via_from\n"
        "names = ('adjust', 'cohort', 'crude', 'report', 'sensitivity')\n"
        "print(json.dumps({'verbs': all(getattr(causal_hcc, n) is getattr(api, n) "
        "for n in names),\n"
        "  'from': via_from is api.sensitivity, 'import_as': via_import is api.sensitivity,\n"
        "  'subpackage': isinstance(__import__('sys').modules['causal_hcc.sensitivity'], "
        "types.ModuleType),\n"
        "  'cohort_class': causal_hcc.Cohort.__module__}))")
    assert got == {"verbs": True, "from": True, "import_as": True, "subpackage": True,
                   "cohort_class": "causal_hcc.data.cohort"}


def test_public_names_and_unknown_names():
    got = _run("import json, causal_hcc as ch\n"
               "names = sorted(n for n in ch.__all__ if n != '__version__')\n"
               "kinds = {n: type(getattr(ch, n)).__name__ for n in names}\n"
               "try:\n    ch.no_such_name\n    missing = False\n"
               "except AttributeError:\n    missing = True\n"
               "print(json.dumps({'kinds': kinds, 'missing': missing, "
               "'in_dir': set(names) <= set(dir(ch))}))")
    assert got["missing"] and got["in_dir"]
    assert got["kinds"] == {"Cohort": "type", "CrudeResults": "type", "EffectEstimate": "type",
                            "EffectsReport": "type", "Labels": "type", "Roles": "type",
                            "adjust": "function", "cohort": "function", "crude": "function",
                            "report": "function", "sensitivity": "function"}


def test_reporting_and_data_names_resolve_lazily():
    got = _run("import json, sys, causal_hcc.reporting as r, causal_hcc.data as d\n"
               "before = 'matplotlib' in sys.modules or 'pandas' in sys.modules\n"
               "from causal_hcc.reporting import OutputDir, MANIFEST\n"
               "mpl_after_output = 'matplotlib' in sys.modules\n"
               "ok = callable(r.write_csv) and callable(d.read_table) and d.Roles.__name__ == "
               "'Roles' and set(r.__all__) <= set(dir(r))\n"
               "print(json.dumps([before, mpl_after_output, ok, MANIFEST]))")
    assert got == [False, False, True, "manifest.json"]


def test_adjust_without_figures_does_not_load_matplotlib(tmp_path):
    loaded = _loaded("import contextlib, io\nfrom causal_hcc.cli import main\n"
                     "with contextlib.redirect_stdout(io.StringIO()):\n"
                     f"    assert main(['adjust', '--bootstrap', '0', '--formats', 'none', "
                     f"'--quiet', '--out', {str(tmp_path / 'o')!r}]) == 0")
    assert "pandas" in loaded and "matplotlib" not in loaded


def test_the_cli_asks_blas_for_one_thread_unless_the_user_chose():
    """cli.main.one_blas_thread: numpy's and scipy's OpenBLAS load with one thread (results
    independent of the core count); a thread variable the user set is kept."""
    code = ("import os\n"
            "os.environ.pop('OPENBLAS_NUM_THREADS', None); os.environ.pop('OMP_NUM_THREADS', None)\n"
            "os.environ['MKL_NUM_THREADS'] = '3'\n"
            "from causal_hcc.cli.main import one_blas_thread\n"
            "one_blas_thread()\n"
            "import numpy, scipy.linalg\n"
            "from threadpoolctl import threadpool_info\n"
            "blas = [i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas']\n"
            "print(os.environ['OPENBLAS_NUM_THREADS'], os.environ['MKL_NUM_THREADS'], "
            "len(blas) > 0 and max(blas))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    assert out.split() == ["1", "3", "1"]
