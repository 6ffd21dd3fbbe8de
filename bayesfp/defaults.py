"""Defaults shared by the library and the ``bayesfp`` command, defined once.

Posterior sampling settings are per chain. The main job (``scripts/main.sh``, ``bayesfp
pipeline``) runs with these values; a fit with fewer tuning steps may fail the diagnostics gate
on the shipped runs pooled over operand sets.
"""

# Posterior sampling (NUTS).
DRAWS = 2000
TUNE = 2000
CHAINS = 4
CORES = 2
SAMPLER = "nutpie"
TARGET_ACCEPT = 0.95
# Pooled models: the group scale tau has a funnel near 0, which a smaller step size follows.
TARGET_ACCEPT_POOLED = 0.99

# Likelihood of Bayesian fits (docs/bayes.md, "The default likelihood"): cell and paired-seed
# effects, noise sd in D, a free power of log2 B, the Brownian discrepancy over log N and log D,
# and the flexible format effect.
STRUCTURE = "cell,seed,sigma-d,log2b-power,discrepancy"
FORMAT_EFFECT = "flex"

# Fits and reports.
LAW = "sun"
SEED = 0
HDI_PROB = 0.9  # mass of the printed and reported intervals
N_BOOT = 200  # bootstrap replicates of a point fit

# Decisions: candidate formats and the block size of quantized candidates.
FORMATS = "e2m1,e3m2,e4m3,bf16"
BLOCK = 128
