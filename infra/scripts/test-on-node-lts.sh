#!/usr/bin/env bash
# Runs the whole test suite again on the other supported Node.js lines (22 and 24 LTS), using
# the official Node binaries that the npm registry's `node` package ships. Expects a built
# checkout (npm test builds it) and redis-server on PATH.
set -euo pipefail
for line in 22 24; do
  echo "== tests on Node ${line}"
  npm exec --yes --package="node@${line}" -- node --version
  npm exec --yes --package="node@${line}" -- node node_modules/vitest/vitest.mjs run --reporter=dot
done
