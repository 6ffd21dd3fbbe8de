"""Which format to train in under posterior uncertainty, and which run to make next.

- :mod:`bayesfp.decide.problem`: candidate formats, cost models, the situation (budget, N, D);
- :mod:`bayesfp.decide.draws`: posterior draws of a fit as flat arrays, the loss they predict;
- :mod:`bayesfp.decide.analysis`: expected loss, P(best), regret, EVPI, budget re-allocation;
- :mod:`bayesfp.decide.evsi`: expected value of sample information of candidate runs;
- :mod:`bayesfp.decide.summary`: the result as plain dicts (JSON, report, ``bayesfp decide``).

See ``docs/decisions.md``.
"""

from bayesfp.decide.analysis import (
    Decision,
    decide,
    evpi,
    expected_regret,
    expected_utility,
    p_best,
    per_draw_allocation,
)
from bayesfp.decide.draws import PosteriorDraws, draws_from_fit
from bayesfp.decide.evsi import Experiment, default_candidates, rank_experiments, read_candidates
from bayesfp.decide.problem import (
    DecisionProblem,
    FlopCost,
    Format,
    ThroughputCost,
    make_problem,
    parse_formats,
    read_throughput,
)
from bayesfp.decide.summary import decision_for_report, decision_to_dict, solve

__all__ = [
    "Decision", "decide", "evpi", "expected_regret", "expected_utility", "p_best",
    "per_draw_allocation", "PosteriorDraws", "draws_from_fit", "Experiment",
    "default_candidates", "rank_experiments", "read_candidates", "DecisionProblem", "FlopCost",
    "Format", "ThroughputCost", "make_problem", "parse_formats", "read_throughput",
    "decision_for_report", "decision_to_dict", "solve",
]
