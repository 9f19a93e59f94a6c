#!/usr/bin/env bash
# Runs the focused test set listed in infra/scripts/node-lts-suites.txt (the suites that touch
# the Node APIs that differ between lines; the file says why each is there) on the other
# supported Node.js lines, 22 and 24 LTS, using the official Node binaries that the npm
# registry's `node` package ships. `npm test` runs the whole suite on the machine's Node.
#   npm run test:node-lts                   the focused set on 22 and 24
#   npm run test:node-lts -- --all          the whole suite on 22 and 24
#   npm run test:node-lts -- <vitest args>  passed on to vitest (e.g. -t <test name filter>)
# NODE_LTS_LINES="24" picks the lines. With TEST_REPORT_DIR set, each line's JSON report is
# written there (CI sums them up at the end). Every line runs even when one fails; the exit
# status says whether all passed. Expects a built checkout (`npm install` builds it, and so
# does `npm test`) and redis-server on PATH.
set -euo pipefail
cd "$(dirname "$0")/../.."

suites=()
if [ "${1:-}" = "--all" ]; then
  shift
  set_name="whole-suite"
else
  set_name="focused-set"
  while read -r entry _; do
    case "$entry" in '' | '#'*) continue ;; esac
    # A moved or renamed suite must not silently drop out of the set.
    if [ ! -e "$entry" ]; then
      echo "infra/scripts/node-lts-suites.txt lists $entry, which does not exist" >&2
      exit 1
    fi
    suites+=("$entry")
  done <infra/scripts/node-lts-suites.txt
fi

reports="${TEST_REPORT_DIR:-$(mktemp -d)}"
mkdir -p "$reports"
status=0
for line in ${NODE_LTS_LINES:-22 24}; do
  # npm exec fetches node@<line> into npm's cache once (the `node` package downloads the binary
  # from the registry when installed); the binary is then run directly, without npm exec's
  # registry look-up on every run. Its folder goes first on PATH for anything that runs `node`.
  node_bin="$(npm exec --yes --package="node@${line}" -- node -p process.execPath)"
  version="$("$node_bin" --version)"
  echo "== tests on Node ${version}: ${set_name}"
  report="${reports}/node-${version}-${set_name}.json"
  PATH="$(dirname "$node_bin"):${PATH}" "$node_bin" node_modules/vitest/vitest.mjs run \
    --reporter=dot --reporter=json --outputFile.json="$report" "$@" "${suites[@]}" || status=1
  if [ -f "$report" ]; then node infra/scripts/test-summary.mjs "$report"; fi
done
exit "$status"
