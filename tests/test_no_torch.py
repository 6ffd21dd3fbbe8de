"""The statistics side never imports torch: a user with only run data installs it without torch."""

import subprocess
import sys

CODE = """
import importlib, pkgutil, sys
import bayesfp
for m in pkgutil.walk_packages(bayesfp.__path__, "bayesfp."):
    importlib.import_module(m.name)
print(sorted(k for k in sys.modules if k == "torch" or k.startswith("torch.")))
"""


def test_no_bayesfp_module_imports_torch():
    result = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
