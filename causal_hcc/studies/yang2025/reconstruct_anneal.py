"""Simulated annealing of the reconstruction search: random moves of the pseudo-patients
(times, events, swaps within and across cells, covariate swaps within a cell) and the
three-phase schedule that accepts or rejects them on the loss of a
:class:`~causal_hcc.studies.yang2025.reconstruct_search.SearchState`.

All randomness comes from the ``numpy.random.Generator`` passed in, so the same seed gives
the same path.
"""

from __future__ import annotations

import math

import numpy as np

from causal_hcc.studies.yang2025.reconstruct_search import MULTI, UNI
from causal_hcc.studies.yang2025.reconstruct_start import initial_survival, valid_patient


_COV_MOVES = ("ecog", "intrahepatic_ccr", "lesions", "vascular_invasion",
              "intrahepatic_max_diameter_cm", "female", "age", "hepatitis", "cirrhosis",
              "child_pugh_b", "afp_positive", "extrahepatic_max_diameter_cm", "combination",
              "extrahepatic_multiple")
_COV_MOVE_CUM = np.cumsum([3, 3, 2, 2, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0.3])
_COV_MOVE_CUM = _COV_MOVE_CUM / _COV_MOVE_CUM[-1]
#: Move mixes: time change, event swap, (time, event) swap across cells, within a cell,
#: covariate swap within a cell. Phase 1 fits what depends on the cells only, phase 2 the
#: associations (its moves leave the survival part unchanged), phase 3 everything.
_PHASE_MOVES = {1: np.cumsum([0.45, 0.2, 0.35, 0.0, 0.0]),
                2: np.cumsum([0.0, 0.0, 0.0, 0.4, 0.6]),
                3: np.cumsum([0.30, 0.10, 0.15, 0.10, 0.35])}


def _pick(rng, pool):
    return pool[rng.integers(len(pool))]


def _swap(arrays, i, j):
    for arr in arrays:
        arr[i], arr[j] = arr[j], arr[i]


def _propose(s, rng, phase):
    """Apply one random move of the phase's mix to the search state.

    Returns
    -------
    undo : callable or None
        Restores the state; None when no move was made.
    kind : str
        "survival" (times or events changed), "within" (a within-cell swap: survival part
        unchanged, time order changed) or "covariate".
    """
    n = len(s.tenths)
    cum = _PHASE_MOVES[phase]
    kind = int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))
    if kind == 0:
        i = rng.integers(n)
        old = s.tenths[i]
        if rng.random() < 0.15:
            new = rng.integers(25, 721)
        else:
            new = int(np.clip(round(old * math.exp(0.25 * rng.standard_normal())), 25, 720))
        if new == old:
            return None, "survival"
        s.tenths[i] = new

        def undo():
            s.tenths[i] = old
        return undo, "survival"
    if kind == 1:
        i = _pick(rng, np.flatnonzero(s.event == 1))
        j = _pick(rng, np.flatnonzero(s.event == 0))
        _swap((s.event,), i, j)
        return (lambda: _swap((s.event,), i, j)), "survival"
    if kind in (2, 3):
        i = rng.integers(n)
        pool = np.flatnonzero(s.cell != s.cell[i]) if kind == 2 else s.cells[s.cell[i]]
        j = _pick(rng, pool)
        if s.tenths[i] == s.tenths[j] and s.event[i] == s.event[j]:
            return None, "survival"
        _swap((s.tenths, s.event), i, j)
        return (lambda: _swap((s.tenths, s.event), i, j)), ("survival" if kind == 2 else "within")
    name = _COV_MOVES[int(np.searchsorted(_COV_MOVE_CUM, rng.random(), side="right"))]
    members = s.cells[rng.integers(4)]
    arr = s.cov[name]
    i = _pick(rng, members)
    others = members[arr[members] != arr[i]]
    if len(others) == 0:
        return None, "covariate"
    j = _pick(rng, others)
    _swap((arr,), i, j)
    if not (valid_patient(s.cov, i, s.params) and valid_patient(s.cov, j, s.params)):
        _swap((arr,), i, j)
        return None, "covariate"
    return (lambda: _swap((arr,), i, j)), "covariate"


def _anneal_phase(s, rng, params, phase, state, n_iterations, t_start):
    """One annealing run of ``n_iterations`` over the phase's moves (geometric cooling).

    ``state`` holds the current losses and blocks and is updated in place (the betas live on
    ``s``). The loss is rounded to 10 significant digits before comparisons so that
    last-bit differences between floating-point libraries are less likely to change the path.
    """
    ratio = params.temperature_end / t_start
    for it in range(n_iterations):
        temp = t_start * ratio ** (it / n_iterations)
        undo, kind = _propose(s, rng, phase)
        if undo is None:
            continue
        design = s.design_state
        new_s, b, beta_cell = state["s"], state["b"], s.beta_cell
        if kind == "survival":
            new_s, b, beta_cell = s.survival_loss()
        elif kind == "within":
            b = s.blocks()
        else:
            design = s.design()
        if phase == 1:
            new_c, bu, bm = state["c"], s.beta_uni, s.beta_multi
        else:
            new_c, bu, bm = s.cox_loss(b, design)
        new_total = float(f"{new_s + new_c:.10g}")
        delta = new_total - state["total"]
        if delta <= 0 or rng.random() < math.exp(-delta / temp):
            state.update(total=new_total, s=new_s, c=new_c, b=b)
            s.beta_uni, s.beta_multi, s.beta_cell, s.design_state = bu, bm, beta_cell, design
        else:
            undo()


def anneal(s, rng, params):
    """Simulated annealing in three phases (see ``_PHASE_MOVES``).

    Phase 1 fits the survival targets that depend on (time, event, cell) only, with up to
    ``n_restarts`` independent restarts (fresh times), keeping the best; phase 2 fits the Cox
    associations by within-cell moves that keep phase 1's fit; phase 3, only while some
    hard target is outside its tolerance, polishes everything jointly. Phases 2 and 3 run
    up to ``n_rounds`` rounds, each starting half as hot as the last. Phases 1 and 2 end
    once their targets are met within ``stop_margin`` of their tolerances.

    Returns
    -------
    dict
        The phase of each round run (``n_iterations`` each), the final loss, and whether every
        hard target was met.
    """
    margin = params.stop_margin
    used = []
    best = None
    # Phase 1: independent restarts (a fresh draw of times each), keeping the best: within
    # the stop margin, else within tolerance, else the lowest loss.
    for attempt in range(params.n_restarts):
        if attempt:
            s.tenths[:], s.event[:] = initial_survival(rng, s.cell, s.tg.n_deaths)
        s.beta_cell = np.zeros(2)
        s_loss, b, s.beta_cell = s.survival_loss(n_iter=25)
        state = {"s": s_loss, "c": 0.0, "b": b, "total": s_loss}
        _anneal_phase(s, rng, params, 1, state, params.n_iterations, params.temperature_start)
        used.append(1)
        with_margin = s.check(margin, "survival")[0]
        rank = (not with_margin, not s.check(1.0, "survival")[0], state["s"])
        if best is None or rank < best[0]:
            best = (rank, s.tenths.copy(), s.event.copy())
        if with_margin:
            break
    s.tenths[:], s.event[:] = best[1], best[2]
    s_loss, b, s.beta_cell = s.survival_loss(n_iter=25)
    s.beta_uni, s.beta_multi = np.zeros(len(UNI)), np.zeros(len(MULTI))
    c_loss, s.beta_uni, s.beta_multi = s.cox_loss(b, s.design_state, n_iter=25)
    state = {"s": s_loss, "c": c_loss, "b": b, "total": s_loss + c_loss}
    # Phases 2 and 3: rounds from the current state, each half as hot as the last. Phase 3
    # is a rescue: it runs only while some hard target is outside its tolerance.
    for phase, part, phase_margin in ((2, "association", margin), (3, "all", 1.0)):
        for rnd in range(params.n_rounds):
            if s.check(phase_margin, part)[0]:
                break
            t_start = params.temperature_start * 0.5 ** rnd * (0.1 if phase == 3 else 1.0)
            t_start = max(t_start, 20 * params.temperature_end)
            _anneal_phase(s, rng, params, phase, state, params.n_iterations, t_start)
            used.append(phase)
    return {"rounds": used, "loss": float(state["total"]), "met": bool(s.check(1.0)[0])}
