"""bayesfp training: the torch side (fake-quant formats, model, trainer, sweeps).

Installed with the ``train`` extra. It writes run records that :mod:`bayesfp` reads.
"""
