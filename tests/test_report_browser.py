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
    assert "<h1>Train in E4M3" in dom
    assert dom.count("<section") == 6
    assert dom.count('src="data:image/png;base64,') >= 10


# A probe run in a copy of the page (the report itself has no script): the layout at a width,
# whether any table is clipped (wider than its box without a scroll container, or its box past
# the window), and the verdict box's text.
PROBE = """<script>
(function () {
  const out = {scrollW: document.documentElement.scrollWidth, innerW: window.innerWidth,
               clipped: [], tables: 0};
  document.querySelectorAll("table").forEach(function (t, i) {
    out.tables += 1;
    const box = t.parentElement;
    const ox = getComputedStyle(box).overflowX;
    const scrolls = ox === "auto" || ox === "scroll";
    if (!scrolls && t.scrollWidth > box.clientWidth + 1) out.clipped.push("table " + i);
    if (box.getBoundingClientRect().right > window.innerWidth + 1) out.clipped.push("box " + i);
  });
  const v = document.getElementById("verdict");
  out.verdict = v ? v.innerText : "";
  out.verdictRight = v ? v.getBoundingClientRect().right : 0;
  window.parent.document.body.setAttribute("data-probe", JSON.stringify(out));
})();
</script>"""


@pytest.fixture(scope="module")
def decided_report(tmp_path_factory):
    """The small fit's report with a real decision at a budget beyond its runs."""
    import matplotlib

    matplotlib.use("Agg")
    from report_fit import small_fit

    from bayesfp.decide import decision_for_report
    from bayesfp.report.html import write_report

    dec = decision_for_report(small_fit(), budget=1e21, formats="e2m1,e3m2,e4m3,bf16",
                              next_runs=None)
    out = tmp_path_factory.mktemp("decided") / "report"
    return write_report(small_fit(), out, decision=dec, svg=False), dec


@pytest.mark.parametrize("width", [1400, 400])
def test_verdict_and_tables_at_width(decided_report, tmp_path, width):
    import html
    import json
    import re

    page, dec = decided_report
    probed = page.read_text().replace("</body>", PROBE + "</body>")
    # headless chromium keeps its window at least 500 px wide: the page is laid out in an
    # iframe of the asked width, which is its viewport (media queries included)
    probe_page = tmp_path / "probe.html"
    probe_page.write_text(
        '<!DOCTYPE html><html><body style="margin:0"><iframe style="border:0" '
        f'width="{width}" height="2000" srcdoc="{html.escape(probed, quote=True)}">'
        "</iframe></body></html>")
    res = _run(["--window-size=1600,2000", "--dump-dom", probe_page.resolve().as_uri()],
               tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    hit = re.search(r'data-probe="([^"]*)"', res.stdout)
    assert hit, res.stdout[:500]
    probe = json.loads(html.unescape(hit.group(1)))
    assert probe["innerW"] == width
    assert probe["tables"] >= 8
    assert probe["clipped"] == [], probe["clipped"]
    assert probe["scrollW"] <= width, probe["scrollW"]       # nothing wider than the window
    assert probe["verdictRight"] <= width
    text = probe["verdict"]
    choice = dec["choice"].upper()
    assert f"Train in {choice}" in text and "P(best)" in text
    # the decision's N and D lie beyond the runs' largest: each is shown with its factor,
    # the factor computed here from the fit's own runs
    best = next(c for c in dec["candidates"] if c["format"] == dec["choice"])
    from report_fit import small_fit

    from bayesfp.bayes.io import fit_table

    runs = fit_table(small_fit(), fitted_only=True)
    for key in ("N", "D"):
        f = best[key] / float(runs[key].max())
        assert f > 1
        assert f"({f:.3g}x)" in text, (key, f, text)
