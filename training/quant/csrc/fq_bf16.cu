// Fake-quant entry points for __nv_bfloat16 input, __nv_bfloat16 output.
#include "launch.cuh"

FQ_INSTANTIATE(__nv_bfloat16, __nv_bfloat16)
