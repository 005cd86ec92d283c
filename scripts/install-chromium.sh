#!/usr/bin/env bash
# Debian's chromium for the benchmark report's browser test (test/report.test.ts drives it through
# puppeteer-core, which downloads no browser). Installs it when it is missing and this is root on
# a system with apt-get; otherwise says why not and exits 0 (the test then skips, printing why).
set -euo pipefail

if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  echo "chromium: $(command -v chromium || command -v chromium-browser) ($( (chromium --version || chromium-browser --version) 2>/dev/null | head -1))"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium is not installed and cannot be installed here (needs root and apt-get): the browser test will be skipped"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium) >/tmp/install-chromium.log 2>&1; then
  echo "apt-get install chromium failed (log: /tmp/install-chromium.log): the browser test will be skipped"
  tail -n 5 /tmp/install-chromium.log || true
  exit 0
fi
echo "chromium: installed $(command -v chromium) ($(chromium --version 2>/dev/null | head -1))"
