"""Errors and warnings raised by causal_hcc.

Input problems are collected by :mod:`causal_hcc.data.schema` and raised once as a
:class:`CohortError` listing every problem (column, what was found, which rows, the fix).
Statistical trouble that does not invalidate the input (no overlap, extreme weights,
separation, an arm with no events, non-convergence) is reported with the warning classes
below, each naming the quantity concerned.
"""

from __future__ import annotations


class CohortError(ValueError):
    """Invalid input data: one error listing every problem found.

    Parameters
    ----------
    problems : sequence of str
        One line per problem. Each names the column, what was found, the first rows or
        patient ids concerned, and how to fix it.
    """

    def __init__(self, problems, header: str = "The data cannot be analysed as given:"):
        self.problems = tuple(problems)
        self.header = header
        lines = [header] + [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))

    def __reduce__(self):
        # Pickled with its arguments, not its message (the default would rebuild it from
        # the message text): it crosses process boundaries (forked and joblib workers).
        return type(self), (self.problems, self.header)


class NotEstimableError(ValueError):
    """A requested quantity cannot be estimated from these data (the message says why)."""


class CausalHccWarning(UserWarning):
    """Base class of the package's statistical warnings."""


class DataWarning(CausalHccWarning):
    """Input accepted but worth a look (a zero follow-up time, a recoded value)."""


class SeparationWarning(CausalHccWarning):
    """(Quasi-)complete separation in a logistic or Cox model; names the covariate."""


class ConvergenceWarning(CausalHccWarning):
    """An optimiser did not converge; the estimate should not be reported as is."""


class OverlapWarning(CausalHccWarning):
    """Poor propensity-score overlap or extreme weights; names the patients."""


class SmallSampleWarning(CausalHccWarning):
    """Too few events or patients for the model asked for (e.g. events per variable < 10)."""


class TimeZeroWarning(CausalHccWarning):
    """A covariate measured after time zero is adjusted for; names the covariate."""


class PositivityWarning(OverlapWarning):
    """An estimand is not identified: part of its target population has no counterpart in
    the other arm (:mod:`causal_hcc.identification`); names the estimates."""
