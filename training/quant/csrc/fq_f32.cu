// Fake-quant entry points for float input, float output.
#include "launch.cuh"

FQ_INSTANTIATE(float, float)
