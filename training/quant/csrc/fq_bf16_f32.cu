// Fake-quant entry points for __nv_bfloat16 input, float output.
#include "launch.cuh"

FQ_INSTANTIATE(__nv_bfloat16, float)
