"""Fake-quant ExMy formats for training: format spec, torch reference, CUDA kernel, linear layer.

Modules: :mod:`~training.quant.spec` (FPFormat, parse_format), :mod:`~training.quant.config`
(OperandQuant, LinearQuantConfig), :mod:`~training.quant.reference` (the semantics, pure torch),
:mod:`~training.quant.kernel` (CUDA kernel, built on first use), :mod:`~training.quant.dispatch`
(front functions), :mod:`~training.quant.linear` (QuantLinear).
"""

from training.quant.config import LinearQuantConfig, OperandQuant
from training.quant.dispatch import quantize, quantize_pair
from training.quant.reference import quantize_reference
from training.quant.spec import FPFormat, parse_format

__all__ = [
    "FPFormat",
    "LinearQuantConfig",
    "OperandQuant",
    "parse_format",
    "quantize",
    "quantize_pair",
    "quantize_reference",
]
