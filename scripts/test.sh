#!/usr/bin/env bash
# Install bayesfp with the training and test extras and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/venv.sh train,test
# The report tests open the HTML report in a real headless browser (Debian's chromium). Without
# it (not root, no apt) those two tests skip and say why.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
        >/dev/null 2>&1 || echo "note: could not install chromium; browser tests will skip"
fi
# In CI the browser test keeps its screenshot as an artefact (docs/reports.md).
if [ "${CI:-}" = "true" ]; then export BAYESFP_REPORT_SCREENSHOT="${BAYESFP_REPORT_SCREENSHOT:-docs/report-screenshot.png}"; fi
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
# pytest exits 5 when no test was collected: not a failure of the suite itself.
if [ "$rc" -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi
exit "$rc"
