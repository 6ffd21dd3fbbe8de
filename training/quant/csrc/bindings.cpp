// Python bindings of the fake-quant kernels (loaded by training/quant/kernel.py).
#include <torch/extension.h>

#include "fakequant.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("fake_quant", &fq::fake_quant, "Fake-quantize x onto an ExMy grid (see reference.py)");
  m.def("fake_quant_pair", &fq::fake_quant_pair,
        "Fake-quantize a 2-D tensor along dim 1 and along dim 0 in one read");
  m.def("set_kernel_variant", &fq::set_kernel_variant, "Pick the kernel variant (0, 1, ...)");
  m.def("get_kernel_variant", &fq::get_kernel_variant, "The kernel variant in use");
  m.def("num_kernel_variants", &fq::num_kernel_variants, "How many kernel variants exist");
}
