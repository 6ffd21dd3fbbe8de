"""The report opened in a real headless browser (Debian's chromium): it renders, offline, with
no console errors, to a non-blank page of the expected size.

Skipped when ``chromium`` is not on PATH (scripts/test.sh installs it). With
``BAYESFP_REPORT_SCREENSHOT=path`` set, the screenshot is copied there (CI keeps
``docs/report-screenshot.png`` as an artefact).
"""

import os
import shutil
import subprocess

import numpy as np
import pytest
from report_fit import rendered

CHROMIUM = shutil.which("chromium")
WIDTH, HEIGHT = 1280, 2400
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None,
                                 reason="chromium is not on PATH (apt-get install -y chromium)")]


def _png_pixels(path) -> np.ndarray:
    """RGB values 0-255 of a PNG file (decoded by matplotlib's Pillow reader)."""
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return np.round(imread(path)[..., :3] * 255).astype(int)


def _run(args, tmp_path):
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_report_renders_in_chromium(tmp_path):
    page = rendered()
    url = page.resolve().as_uri()
    shot = tmp_path / "report.png"
    res = _run([f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}",
                "--enable-logging=stderr", "--v=0", url], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    console = [line for line in res.stderr.splitlines() if "CONSOLE" in line
               or "Uncaught" in line or "ERR_" in line and "file://" in line]
    assert not console, "\n".join(console)
    px = _png_pixels(shot)
    assert px.shape[:2] == (HEIGHT, WIDTH)
    # not blank: many distinct colours, and the centred column differs from the margins
    flat = px.reshape(-1, 3)[::97]
    assert len(np.unique(flat, axis=0)) > 50
    assert px.std() > 20
    col = px[:, WIDTH // 2 - 400:WIDTH // 2 + 400]
    margin = px[:, :20]
    assert np.abs(col.mean() - margin.mean()) > 1 or col.std() > margin.std() + 10
    dest = os.environ.get("BAYESFP_REPORT_SCREENSHOT")
    if dest:
        shutil.copyfile(shot, dest)


def test_report_dom_in_chromium(tmp_path):
    page = rendered()
    res = _run(["--dump-dom", page.resolve().as_uri()], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    dom = res.stdout
    assert "<h1>bayesfp report" in dom
    assert dom.count("<section") == 6
    assert dom.count('src="data:image/png;base64,') >= 10
