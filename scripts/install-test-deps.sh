#!/usr/bin/env bash
# Installs what the tests need beyond the host deps: Debian's Chromium, which the report's
# browser test (runner/tests/report_browser.rs) drives headless, gnupg, with which the
# archive-verification tests sign a throwaway archive, and the tools `rsslab export` is for,
# which read its files in runner/tests/exports.rs: Prometheus' promtool (package prometheus)
# and pandas (python3-pandas, for Debian's /usr/bin/python3). Idempotent; needs root (or sudo).
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if command -v chromium >/dev/null 2>&1 && command -v gpg >/dev/null 2>&1 \
  && command -v promtool >/dev/null 2>&1 && /usr/bin/python3 -c 'import pandas' 2>/dev/null; then
  echo "test deps: $(chromium --version 2>/dev/null | head -1)"
  exit 0
fi

$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium gnupg prometheus python3-pandas

command -v chromium >/dev/null 2>&1 || { echo "chromium is still missing after apt-get install" >&2; exit 3; }
command -v promtool >/dev/null 2>&1 || { echo "promtool is still missing after apt-get install" >&2; exit 3; }
/usr/bin/python3 -c 'import pandas' || { echo "pandas is still missing after apt-get install" >&2; exit 3; }
echo "test deps: $(chromium --version 2>/dev/null | head -1)"
