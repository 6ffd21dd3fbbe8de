// Fake-quant entry points for __half input, __half output.
#include "launch.cuh"

FQ_INSTANTIATE(__half, __half)
