"""The CUDA sources link: the kernel header is included by several translation units (one per
dtype), so each kernel it defines must be a template or ``static``; a plain ``__global__``
function there is defined once per unit and the link fails (a GPU-only failure, checked here on
every machine)."""

import re
from pathlib import Path

CSRC = Path(__file__).parents[1] / "training" / "quant" / "csrc"


def _kernels_without_linkage_guard(text):
    lines = text.splitlines()
    bad = []
    for i, line in enumerate(lines):
        if "__global__" not in line.split("//")[0]:
            continue
        prev = next((p.strip() for p in reversed(lines[:i])
                     if p.strip() and not p.strip().startswith("//")), "")
        if not (prev.startswith("template") or re.search(r"\bstatic\b", line)):
            bad.append(f"line {i + 1}: {line.strip()}")
    return bad


def test_header_kernels_are_templates_or_static():
    headers = sorted(CSRC.glob("*.cuh")) + sorted(CSRC.glob("*.h"))
    assert headers
    for h in headers:
        assert _kernels_without_linkage_guard(h.read_text()) == [], h.name


def test_the_check_catches_a_plain_kernel():
    text = "// x\ntemplate <int N>\n__global__ void a() {}\n\n__global__ void b() {}\n" \
           "static __global__ void c() {}\n"
    assert _kernels_without_linkage_guard(text) == ["line 5: __global__ void b() {}"]
