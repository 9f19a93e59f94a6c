#!/usr/bin/env bash
# Makes sure a headless-capable Chromium is at /usr/bin/chromium: the dashboard's browser test
# drives it with playwright-core (which downloads no browser of its own). On Debian/Ubuntu it
# installs the distribution's `chromium` package (as root, or through sudo); elsewhere it
# prints what to do and fails.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
      echo "chromium is not installed. Install it with: sudo apt-get install -y chromium" >&2
      exit 1
    fi
  fi
  echo "chromium is not installed; installing Debian's package (apt-get install -y chromium)…"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
  exit 0
fi
echo "chromium is not installed. Install Chromium so that /usr/bin/chromium exists (the dashboard test drives it)." >&2
exit 1
