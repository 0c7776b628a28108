"""The package's errors survive a trip to another process (joblib, Dask and forked workers
pickle them): same type, same problems, same message."""

import pickle

from causal_hcc.errors import CohortError
from causal_hcc.reporting.output import OutputError


def test_errors_pickle_with_their_problems_and_message():
    errors = [CohortError(["column 'ecog': values 7 in rows 3, 9; allowed 0-4",
                           "column 'death': missing in row 12"]),
              CohortError(["no patients left"], header="Cannot weight:"),
              OutputError("cannot write into /read-only/out: permission denied")]
    for error in errors:
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error)
        assert back.problems == error.problems and str(back) == str(error)
    assert str(errors[0]).splitlines()[1] == "  - column 'ecog': values 7 in rows 3, 9; " \
                                              "allowed 0-4"
