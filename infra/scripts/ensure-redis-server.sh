#!/usr/bin/env bash
# Makes sure redis-server is on PATH: rendermill starts a private one when REDIS_URL is unset.
# On Debian/Ubuntu it installs the distribution's package (as root, or through sudo);
# elsewhere it prints the command to run and fails.
set -euo pipefail
if [ -n "${REDIS_URL:-}" ] || command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
      echo "redis-server is not installed. Install it with: sudo apt-get install -y redis-server" >&2
      exit 1
    fi
  fi
  echo "redis-server is not installed; installing Debian's package (apt-get install -y redis-server)…"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
  # The package starts a system service on 6379; rendermill does not use it.
  exit 0
fi
if command -v brew >/dev/null 2>&1; then
  echo "redis-server is not installed. Install it with: brew install redis" >&2
else
  echo "redis-server is not installed. Install Redis 7 (https://redis.io/docs/install/) or set REDIS_URL." >&2
fi
exit 1
