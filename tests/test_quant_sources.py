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


def _entry_points(text, macro):
    return re.findall(rf"^{macro}\((\w+), (\w+)\)$", text, flags=re.M)


def test_every_dtype_unit_is_declared_built_and_dispatched():
    # each (input, output) pair is instantiated in exactly one fq_*.cu, declared extern in
    # fakequant.cu (else that unit instantiates it again or the link fails) and compiled
    from training.quant.kernel import SOURCES

    units = sorted(p.name for p in CSRC.glob("fq_*.cu"))
    assert units and set(units) <= set(SOURCES)
    built = [pair for u in units for pair in _entry_points((CSRC / u).read_text(),
                                                           "FQ_INSTANTIATE")]
    assert all(len(_entry_points((CSRC / u).read_text(), "FQ_INSTANTIATE")) == 1 for u in units)
    host = (CSRC / "fakequant.cu").read_text()
    assert sorted(built) == sorted(_entry_points(host, "FQ_EXTERN"))
    assert len(set(built)) == len(built) == 4
    for t, out in built:  # every pair is reachable from the dtype switch
        assert f"Types<{t}, {out}>" in host


def test_the_unit_check_reads_the_macros():
    text = "FQ_INSTANTIATE(float, float)\n// FQ_INSTANTIATE(__half, __half)\n"
    assert _entry_points(text, "FQ_INSTANTIATE") == [("float", "float")]
