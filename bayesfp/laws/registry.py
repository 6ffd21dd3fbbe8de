"""Laws by name."""

from bayesfp.errors import BayesfpInputError
from bayesfp.laws.base import Law
from bayesfp.laws.chinchilla import CHINCHILLA
from bayesfp.laws.kumar import KUMAR, KUMAR_PTQ
from bayesfp.laws.sun import SUN, SUN_SEP

LAWS = {law.name: law for law in (CHINCHILLA, KUMAR, KUMAR_PTQ, SUN, SUN_SEP)}


def get_law(law: Law | str) -> Law:
    """Return the law object for a name (``chinchilla``, ``kumar``, ``kumar_ptq``, ``sun``,
    ``sun_sep``)."""
    if isinstance(law, Law):
        return law
    try:
        return LAWS[str(law).lower()]
    except KeyError:
        raise BayesfpInputError(
            f"law: unknown law {law!r}; choose from {', '.join(LAWS)}") from None
