// Sums up vitest JSON reports for CI logs: the failed tests by name (so that a red run says
// what failed at its end, not hundreds of lines above), one line per report, named after its
// file (e.g. node-v24.11.1-focused-set), and, when there are several, a last line with the
// totals. Every line reads "N passed, N failed, N skipped". Exits 1 when a test failed.
// Usage: node infra/scripts/test-summary.mjs <report.json>…
import { readFileSync } from 'node:fs';
import path from 'node:path';

const files = process.argv.slice(2);
const totals = { passed: 0, failed: 0, skipped: 0 };
const lines = [];
for (const file of files) {
  const report = JSON.parse(readFileSync(file, 'utf8'));
  const name = path.basename(file, '.json');
  const counts = {
    passed: report.numPassedTests,
    failed: report.numFailedTests,
    skipped: report.numPendingTests + report.numTodoTests,
  };
  for (const suite of report.testResults) {
    const where = path.relative(process.cwd(), suite.name);
    for (const test of suite.assertionResults) {
      if (test.status === 'failed') console.log(`FAILED (${name}) ${where} > ${test.fullName}`);
    }
    // A file that failed outside its tests (an import, a hook) has no failed test to name.
    if (suite.status === 'failed' && !suite.assertionResults.some((t) => t.status === 'failed')) {
      // It counts as one failure, so that the line below does not read "0 failed".
      console.log(`FAILED (${name}) ${where}: ${(suite.message ?? '').split('\n')[0]}`);
      counts.failed += 1;
    }
  }
  for (const key of Object.keys(totals)) totals[key] += counts[key];
  lines.push(`${files.length > 1 ? name : 'Tests'}: ${line(counts)}`);
}
for (const text of lines) console.log(text);
if (files.length > 1) console.log(`Tests: ${line(totals)}`);
process.exitCode = totals.failed > 0 ? 1 : 0;

function line({ passed, failed, skipped }) {
  return `${passed} passed, ${failed} failed, ${skipped} skipped`;
}
