// Python bindings of the fake-quant kernels (loaded by training/quant/kernel.py).
#include <torch/extension.h>

#include "fakequant.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("fake_quant", &fq::fake_quant, "Fake-quantize x onto an ExMy grid (see reference.py)");
  m.def("fake_quant_pair", &fq::fake_quant_pair,
        "Fake-quantize a 2-D tensor along dim 1 and along dim 0 in one read");
  m.def("set_kernel", &fq::set_kernel, "Use the kernel set 'square' (default) or 'generic'");
  m.def("get_kernel", &fq::get_kernel, "The kernel set in use");
}
