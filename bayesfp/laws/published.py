"""Published constants as named parameter sets (bayesfp names; paper symbols in comments)."""

from types import MappingProxyType

# Hoffmann et al. 2022, Approach 3 (rounded): E = 1.69, A = 406.4, B = 410.7.
CHINCHILLA_HOFFMANN = MappingProxyType(
    dict(n=406.4, alpha=0.34, d=410.7, beta=0.28, eps=1.69)
)

# Kumar et al. 2024, App. K (alpha tied to beta): A = 4.299e3, B = 1.806e4, E = 2.7648.
# gamma_post is not among the published constants: PTQ quantities need it fitted or given.
KUMAR_2024 = MappingProxyType(
    dict(n=4.299e3, alpha=0.4965, d=1.806e4, beta=0.4965, eps=2.7648,
         gamma_w=2.6745, gamma_a=2.2102, gamma_kv=0.9578,
         n_w=0.3037, n_a=1.4072, n_kv=2.4185,
         C_T=0.0598, gamma_D=0.5068, gamma_N=0.3439)
)

# Sun et al. 2025, Table 2.
SUN_2025 = MappingProxyType(
    dict(n=69.2343, alpha=0.2368, d=68973.0621, beta=0.5162, eps=1.9061,
         gamma=11334.5197, delta=3.1926, nu=2.9543)
)

PUBLISHED = MappingProxyType({
    "chinchilla": CHINCHILLA_HOFFMANN,
    "kumar": KUMAR_2024,
    "kumar_ptq": KUMAR_2024,
    "sun": SUN_2025,
    "sun_sep": MappingProxyType(dict(SUN_2025, alpha_q=SUN_2025["alpha"], beta_q=SUN_2025["beta"])),
})

# The optimal-layout table of Sun et al. (P total bits -> (E, M)).
SUN_OPTIMAL_LAYOUT = MappingProxyType({
    4: (2, 1), 5: (2, 2), 6: (3, 2), 7: (3, 3), 8: (4, 3), 9: (4, 4), 10: (5, 4), 11: (5, 5),
    12: (6, 5), 16: (8, 7),
})
