/** The dashboard's stylesheet: system fonts, a light palette, no framework. */
export const DASHBOARD_CSS = `
:root {
  --ink: #1d2330; --muted: #5d6678; --line: #dde2ea; --bg: #f6f7fa; --card: #fff;
  --ok: #2f9e5b; --cached: #3a7bd5; --failed: #d64545; --budget: #e08a1e; --cancelled: #9aa3b2;
  --running: #c9d6ea;
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
a { color: var(--cached); text-decoration: none; }
a:hover { text-decoration: underline; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.top { display: flex; align-items: center; gap: 24px; padding: 10px 24px; background: var(--ink); color: #fff; }
.top a, .top .who { color: #fff; }
.brand { font-weight: 700; font-size: 17px; }
nav { display: flex; align-items: center; gap: 18px; flex: 1; }
nav .who { margin-left: auto; opacity: .8; }
button { font: inherit; padding: 5px 12px; border: 1px solid var(--line); border-radius: 6px; background: var(--card); cursor: pointer; }
main { max-width: 1200px; margin: 0 auto; padding: 20px 24px 48px; }
h1 { font-size: 20px; margin: 8px 0 16px; }
h2 { font-size: 16px; margin: 28px 0 10px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 16px; }
.login { max-width: 420px; margin: 60px auto; }
.login form { display: grid; gap: 8px; }
.login input { font: inherit; padding: 8px; border: 1px solid var(--line); border-radius: 6px; }
.hint, .muted { color: var(--muted); }
.error { color: var(--failed); min-height: 1.2em; margin: 0; }
table { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); border-radius: 10px; overflow: hidden; }
th, td { text-align: left; padding: 8px 10px; border-bottom: 1px solid var(--line); vertical-align: middle; }
th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; background: #fafbfc; }
tr:last-child td { border-bottom: 0; }
.status { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; background: var(--running); }
.status.completed { background: #d9f2e3; } .status.failed { background: #f7dcdc; } .status.budget_exceeded { background: #fbe6cc; } .status.cancelled, .status.cancelling { background: #e6e8ec; }
.progress { display: flex; height: 10px; min-width: 160px; border-radius: 5px; overflow: hidden; background: #eceff4; }
.progress span { display: block; height: 100%; }
.seg-succeeded { background: var(--ok); } .seg-cached { background: var(--cached); }
.seg-failed { background: var(--failed); } .seg-budget_exceeded { background: var(--budget); }
.seg-cancelled { background: var(--cancelled); } .seg-running { background: var(--running); }
.progress-label { font-size: 12px; color: var(--muted); margin-top: 3px; white-space: nowrap; }
.spend-bar { height: 6px; min-width: 120px; border-radius: 3px; background: #eceff4; overflow: hidden; margin-top: 3px; }
.spend-bar span { display: block; height: 100%; background: var(--ink); }
.spend-bar.over span { background: var(--failed); }
.summary { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: 12px; margin-bottom: 8px; }
.summary .card .big { font-size: 20px; font-weight: 600; }
.legend { display: flex; flex-wrap: wrap; gap: 12px; font-size: 12px; color: var(--muted); margin-top: 8px; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: -1px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(132px, 1fr)); gap: 10px; }
.grid figure { margin: 0; background: var(--card); border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
.grid img { display: block; width: 100%; aspect-ratio: 1; object-fit: cover; background: #eceff4; }
.grid figcaption { padding: 4px 6px; font-size: 12px; display: flex; justify-content: space-between; gap: 4px; }
.badge { font-size: 11px; padding: 0 6px; border-radius: 8px; background: #e3edfb; color: var(--cached); }
.mode .provider-batch { font-size: 12px; white-space: nowrap; }
#provider-batches { margin-bottom: 8px; }
.status.validating, .status.in_progress, .status.finalizing, .status.submitting, .status.waiting_for_room { background: var(--running); }
.status.expired { background: #f7dcdc; } .status.stored { background: #d9f2e3; }
.runs { margin: 0; padding: 0; list-style: none; }
.more { margin-top: 10px; }
`;
