/**
 * The dashboard's script, served as /dashboard/app.js: plain browser JavaScript, no framework
 * and no build step. It reads the same JSON API as every client (`/v1/batches`, `/manifest`,
 * `/v1/schedules`) with the session cookie, and builds the page with DOM calls and
 * `textContent` only, so nothing a tenant wrote (ids, prompts, error messages) can become markup.
 * (Kept free of backticks and dollar-brace: it lives in a template string.)
 */
export const DASHBOARD_SCRIPT = String.raw`'use strict';
(function () {
  /** Every request says it comes from this page: the API wants it on cookie-authenticated POSTs. */
  var CSRF_HEADERS = { 'x-rendermill-csrf': '1' };
  var ENDED = { completed: true, cancelled: true };
  var SEGMENTS = ['succeeded', 'cached', 'failed', 'budget_exceeded', 'cancelled', 'running'];
  var SEGMENT_LABELS = { succeeded: 'rendered', cached: 'cached', failed: 'failed', budget_exceeded: 'over budget', cancelled: 'cancelled', running: 'running' };
  /** Thumbnails drawn at most; the manifest link has the rest. */
  var MAX_THUMBNAILS = 500;
  var BATCH_REFRESH_MS = 2000;
  var MANIFEST_EVERY_TICKS = 3;
  var timer = null;
  var view = document.getElementById('view');

  function Unauthorized() {}

  function el(tag, props, children) {
    var node = document.createElement(tag);
    Object.keys(props || {}).forEach(function (key) {
      var value = props[key];
      if (value === undefined || value === null) return;
      if (key === 'text') node.textContent = String(value);
      else if (key === 'className') node.className = value;
      else if (key.indexOf('data-') === 0 || key.indexOf('aria-') === 0 || key === 'role') node.setAttribute(key, String(value));
      else node[key] = value;
    });
    (children || []).forEach(function (child) {
      if (child !== null && child !== undefined) node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    });
    return node;
  }

  async function api(path, options) {
    options = options || {};
    var response = await fetch(path, {
      method: options.method || 'GET',
      credentials: 'same-origin',
      headers: Object.assign({ accept: 'application/json' }, CSRF_HEADERS, options.body ? { 'content-type': 'application/json' } : {}),
      body: options.body ? JSON.stringify(options.body) : undefined,
    });
    if (response.status === 401 && !options.allow401) {
      showLogin();
      throw new Unauthorized();
    }
    var body = response.status === 204 ? null : await response.json().catch(function () { return null; });
    if (!response.ok) {
      var error = new Error(body && body.error ? body.error.message : 'HTTP ' + response.status);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  function usd(value) { return '$' + Number(value || 0).toFixed(4); }
  function when(iso) { return iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-'; }
  function stopRefresh() { if (timer) clearTimeout(timer); timer = null; }
  function done(counts) {
    return counts.succeeded + counts.cached + counts.failed + counts.budget_exceeded + counts.cancelled;
  }

  /** A stacked bar: rendered, cached, failed, over budget, cancelled, running — out of the total. */
  function progressBar(batch) {
    var counts = batch.counts;
    var total = Math.max(counts.total, 1);
    var bar = el('div', { className: 'progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': counts.total, 'aria-valuenow': done(counts), 'data-done': done(counts), 'data-total': counts.total });
    SEGMENTS.forEach(function (name) {
      if (!counts[name]) return;
      var segment = el('span', { className: 'seg-' + name, title: counts[name] + ' ' + SEGMENT_LABELS[name] });
      segment.style.width = (100 * counts[name] / total) + '%';
      bar.appendChild(segment);
    });
    var label = done(counts) + '/' + counts.total + ' done · cached ' + counts.cached + ' · failed ' + counts.failed;
    if (counts.budget_exceeded) label += ' · over budget ' + counts.budget_exceeded;
    return el('div', { className: 'progress-wrap' }, [bar, el('div', { className: 'progress-label', text: label })]);
  }

  /** Spend against the budget, as text and a bar (red when the budget is spent). */
  function spendVsBudget(batch) {
    var text = usd(batch.spend_usd) + (batch.budget_usd === null ? ' (no budget)' : ' of ' + usd(batch.budget_usd));
    var wrap = el('div', { className: 'spend', 'data-spend': batch.spend_usd, 'data-budget': batch.budget_usd }, [el('span', { text: text })]);
    if (batch.budget_usd) {
      var share = Math.min(1, batch.spend_usd / batch.budget_usd);
      var bar = el('div', { className: 'spend-bar' + (share >= 1 ? ' over' : ''), title: Math.round(share * 100) + '% of the budget' }, [el('span')]);
      bar.firstChild.style.width = (share * 100) + '%';
      wrap.appendChild(bar);
    }
    return wrap;
  }

  /** The provider batch phase and the lines it has answered: provider_batch items wait for hours. */
  function providerBatchText(summary) {
    if (!summary) return null;
    return 'provider batch ' + summary.status + (summary.lines > 0 ? ' ' + (summary.completed + summary.failed) + '/' + summary.lines : '');
  }

  /** How the batch renders: realtime, or its provider batch's phase with counts. */
  function modeCell(batch) {
    var mode = batch.mode || 'realtime';
    var wrap = el('div', { className: 'mode', 'data-mode': mode }, [el('span', { className: 'mode-name', text: mode + (batch.mode_requested ? ' (' + batch.mode_requested + ')' : '') })]);
    var phase = providerBatchText(batch.provider_batch);
    if (phase) wrap.appendChild(el('div', { className: 'provider-batch muted', 'data-phase': batch.provider_batch.status, text: phase }));
    return wrap;
  }

  /** Each provider batch of a batch: its provider id, phase, lines answered and error. */
  function providerBatchTable(batch) {
    var parts = batch.provider_batches || [];
    if (parts.length === 0) return null;
    return el('table', { id: 'provider-batches' }, [
      el('thead', {}, [el('tr', {}, ['Part', 'Provider batch', 'Route', 'Status', 'Lines', 'Submitted', 'Ended'].map(function (h) { return el('th', { text: h }); }))]),
      el('tbody', {}, parts.map(function (part) {
        return el('tr', { 'data-part': part.part }, [
          el('td', { text: part.part }),
          el('td', { className: 'mono', text: part.provider_batch_id || '-' }),
          el('td', { text: part.route + ' · ' + part.model }),
          el('td', {}, [statusBadge(part.status), part.error ? el('div', { className: 'error', text: part.error }) : null]),
          el('td', { text: (part.completed + part.failed) + '/' + part.lines + (part.failed ? ' (' + part.failed + ' failed)' : '') }),
          el('td', { className: 'muted', text: when(part.submitted_at) }),
          el('td', { className: 'muted', text: when(part.ended_at) }),
        ]);
      })),
    ]);
  }

  function statusBadge(status) { return el('span', { className: 'status ' + status, text: status }); }

  function legend() {
    return el('div', { className: 'legend' }, SEGMENTS.map(function (name) {
      var swatch = el('i', { className: 'seg-' + name });
      return el('span', {}, [swatch, SEGMENT_LABELS[name]]);
    }));
  }

  // ---- the home page: batches and schedules -------------------------------------------------

  function batchRow(batch) {
    return el('tr', { 'data-batch-id': batch.id }, [
      el('td', {}, [el('a', { className: 'mono', href: '#/batches/' + encodeURIComponent(batch.id), text: batch.id })]),
      el('td', {}, [statusBadge(batch.status)]),
      el('td', {}, [progressBar(batch)]),
      el('td', {}, [modeCell(batch)]),
      el('td', {}, [spendVsBudget(batch)]),
      el('td', { className: 'muted', text: when(batch.created_at) }),
      el('td', { className: 'mono muted', text: batch.schedule_id || '-' }),
    ]);
  }

  async function showHome() {
    var tbody = el('tbody');
    var table = el('table', { id: 'batches' }, [
      el('thead', {}, [el('tr', {}, ['Batch', 'Status', 'Progress', 'Mode', 'Spend vs budget', 'Created', 'Schedule'].map(function (h) { return el('th', { text: h }); }))]),
      tbody,
    ]);
    var more = el('button', { className: 'more', type: 'button', text: 'Load more', hidden: true });
    var empty = el('p', { className: 'muted', text: 'No batches yet.', hidden: true });
    var schedules = el('div', { id: 'schedules-wrap' });
    view.replaceChildren(el('h1', { text: 'Batches' }), table, empty, more, legend(), el('h2', { text: 'Schedules' }), schedules);
    var cursor = null;

    async function loadPage() {
      var page = await api('/v1/batches?limit=20' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
      page.data.forEach(function (batch) { tbody.appendChild(batchRow(batch)); });
      cursor = page.next_cursor;
      more.hidden = !cursor;
      empty.hidden = tbody.children.length > 0;
    }
    more.onclick = function () { loadPage().catch(showError); };

    /** Running batches are fetched again until they end; ended ones never change. */
    async function refreshRunning() {
      var rows = Array.prototype.slice.call(tbody.querySelectorAll('tr[data-running]'));
      await Promise.all(rows.map(async function (row) {
        var batch = await api('/v1/batches/' + encodeURIComponent(row.getAttribute('data-batch-id')));
        row.replaceWith(markRunning(batchRow(batch), batch));
      }));
    }
    function markRunning(row, batch) { if (!ENDED[batch.status]) row.setAttribute('data-running', ''); return row; }
    function tick() {
      timer = setTimeout(function () {
        refreshRunning().then(function () { if (tbody.querySelector('tr[data-running]')) tick(); }, showError);
      }, BATCH_REFRESH_MS);
    }

    await Promise.all([loadPage(), loadSchedules(schedules)]);
    Array.prototype.forEach.call(tbody.querySelectorAll('tr'), function (row) {
      var status = row.querySelector('.status').textContent;
      if (!ENDED[status]) row.setAttribute('data-running', '');
    });
    if (tbody.querySelector('tr[data-running]')) tick();
  }

  async function loadSchedules(container) {
    var list = await api('/v1/schedules');
    if (list.data.length === 0) {
      container.replaceChildren(el('p', { className: 'muted', text: 'No schedules.' }));
      return;
    }
    container.replaceChildren(el('table', { id: 'schedules' }, [
      el('thead', {}, [el('tr', {}, ['Schedule', 'When', 'Budget a run', 'Next runs (UTC)', 'Last run'].map(function (h) { return el('th', { text: h }); }))]),
      el('tbody', {}, list.data.map(function (schedule) {
        return el('tr', { 'data-schedule-id': schedule.id }, [
          el('td', {}, [el('div', { text: schedule.name }), el('div', { className: 'mono muted', text: schedule.id })]),
          el('td', {}, [el('code', { text: schedule.cron }), ' ', el('span', { className: 'muted', text: schedule.timezone })]),
          el('td', { text: schedule.budget_usd === undefined || schedule.budget_usd === null ? '-' : usd(schedule.budget_usd) }),
          el('td', {}, [el('ul', { className: 'runs' }, schedule.next_runs.slice(0, 3).map(function (run) { return el('li', { className: 'next-run', text: when(run) }); }))]),
          el('td', {}, [
            schedule.last_batch_id ? el('a', { className: 'mono', href: '#/batches/' + encodeURIComponent(schedule.last_batch_id), text: when(schedule.last_run_at) }) : el('span', { className: 'muted', text: 'not yet' }),
            schedule.last_error ? el('div', { className: 'error', text: String(schedule.last_error.message || schedule.last_error) }) : null,
          ]),
        ]);
      })),
    ]));
  }

  // ---- one batch: progress, spend, thumbnails, failures -------------------------------------

  /** The smallest derived copy of an image when the batch asked for some, else the image. */
  function thumbnailUrl(image) {
    var copies = (image.derived || []).slice().sort(function (a, b) { return parseInt(a.name, 10) - parseInt(b.name, 10); });
    return copies.length > 0 ? copies[0].url : image.url;
  }

  function thumbnails(manifest) {
    var figures = [];
    manifest.items.forEach(function (item) {
      item.images.forEach(function (image, index) {
        if (figures.length >= MAX_THUMBNAILS) return;
        var img = el('img', { src: thumbnailUrl(image), alt: item.id, title: item.prompt || item.id, loading: figures.length < 60 ? 'eager' : 'lazy' });
        var link = el('a', { href: image.url, target: '_blank', rel: 'noopener noreferrer' }, [img]);
        figures.push(el('figure', { 'data-item-id': item.id }, [
          link,
          el('figcaption', {}, [el('span', { className: 'mono', text: item.id + (item.images.length > 1 ? ' #' + (index + 1) : '') }), image.cached ? el('span', { className: 'badge', text: 'cached' }) : null]),
        ]));
      });
    });
    var total = manifest.items.reduce(function (sum, item) { return sum + item.images.length; }, 0);
    var parts = [figures.length ? el('div', { id: 'thumbnails', className: 'grid' }, figures) : el('p', { className: 'muted', text: 'No images yet.' })];
    if (total > figures.length) parts.push(el('p', { className: 'muted', text: 'Showing ' + figures.length + ' of ' + total + ' images; the manifest lists them all.' }));
    return parts;
  }

  function failures(manifest) {
    var failed = manifest.items.filter(function (item) { return item.error || item.status === 'failed' || item.status === 'budget_exceeded'; });
    if (failed.length === 0) return [el('p', { className: 'muted', text: 'No failures.' })];
    return [el('table', { id: 'failures' }, [
      el('thead', {}, [el('tr', {}, ['Item', 'Status', 'Reason', 'Message'].map(function (h) { return el('th', { text: h }); }))]),
      el('tbody', {}, failed.map(function (item) {
        return el('tr', { 'data-item-id': item.id }, [
          el('td', { className: 'mono', text: item.id }),
          el('td', {}, [statusBadge(item.status)]),
          el('td', {}, [el('code', { className: 'error-code', text: item.error ? item.error.code : '-' })]),
          el('td', { className: 'error-message', text: item.error ? item.error.message : '' }),
        ]);
      })),
    ])];
  }

  function batchSummary(batch) {
    var id = encodeURIComponent(batch.id);
    var summary = el('div', { className: 'summary' }, [
      el('div', { className: 'card' }, [el('div', { className: 'muted', text: 'Progress' }), progressBar(batch), legend()]),
      el('div', { className: 'card' }, [el('div', { className: 'muted', text: 'Mode' }), modeCell(batch)]),
      el('div', { className: 'card' }, [el('div', { className: 'muted', text: 'Spend vs budget' }), el('div', { className: 'big' }, [spendVsBudget(batch)]), el('div', { className: 'muted', text: 'saved by the cache ' + usd(batch.saved_usd) })]),
      el('div', { className: 'card' }, [
        el('div', { className: 'muted', text: 'Created ' + when(batch.created_at) }),
        el('div', { className: 'muted', text: 'Finished ' + when(batch.completed_at) }),
        el('div', {}, ['Manifest: ', el('a', { href: '/v1/batches/' + id + '/manifest', target: '_blank', text: 'JSON' }), ' · ', el('a', { href: '/v1/batches/' + id + '/manifest?format=csv', text: 'CSV' })]),
      ]),
    ]);
    var parts = providerBatchTable(batch);
    return parts ? el('div', {}, [summary, el('h2', { text: 'Provider batches' }), parts]) : summary;
  }

  async function showBatch(id) {
    var heading = el('h1', {}, ['Batch ', el('span', { className: 'mono', text: id })]);
    var summary = el('div', { id: 'batch-summary' });
    var grid = el('div', { id: 'thumbnails-wrap' });
    var failureList = el('div', { id: 'failures-wrap' });
    view.replaceChildren(el('p', {}, [el('a', { href: '#/', text: '← all batches' })]), heading, summary, el('h2', { text: 'Images' }), grid, el('h2', { text: 'Failures' }), failureList);
    var ticks = 0;
    var status = null;

    async function load(withManifest) {
      var batch = await api('/v1/batches/' + encodeURIComponent(id));
      var ended = ENDED[batch.status];
      summary.replaceChildren(batchSummary(batch));
      heading.replaceChildren('Batch ', el('span', { className: 'mono', text: batch.id }), ' ', statusBadge(batch.status));
      // The manifest presigns every image URL: fetched now and then while running, once at the end.
      if (withManifest || (ended && !ENDED[status])) {
        var manifest = await api('/v1/batches/' + encodeURIComponent(id) + '/manifest');
        grid.replaceChildren.apply(grid, thumbnails(manifest));
        failureList.replaceChildren.apply(failureList, failures(manifest));
      }
      status = batch.status;
      if (!ended) {
        timer = setTimeout(function () {
          ticks += 1;
          load(ticks % MANIFEST_EVERY_TICKS === 0).catch(showError);
        }, BATCH_REFRESH_MS);
      }
    }
    await load(true);
  }

  // ---- session and routing ------------------------------------------------------------------

  function showError(error) {
    if (error instanceof Unauthorized) return;
    view.replaceChildren(el('p', { className: 'error', role: 'alert', text: error.message }), el('p', {}, [el('a', { href: '#/', text: '← all batches' })]));
  }

  function route() {
    stopRefresh();
    var match = /^#\/batches\/(.+)$/.exec(location.hash);
    var shown = match ? showBatch(decodeURIComponent(match[1])) : showHome();
    shown.catch(showError);
  }

  function showLogin() {
    stopRefresh();
    document.getElementById('nav').hidden = true;
    view.hidden = true;
    view.replaceChildren();
    document.getElementById('login').hidden = false;
    document.getElementById('api-key').focus();
  }

  async function start() {
    var session = await api('/dashboard/session', { allow401: true }).catch(function (error) {
      if (error.status === 401) return null;
      throw error;
    });
    if (!session) return showLogin();
    document.getElementById('login').hidden = true;
    document.getElementById('nav').hidden = false;
    document.getElementById('who').textContent = 'tenant ' + session.tenant;
    document.getElementById('admin-link').hidden = !session.admin;
    view.hidden = false;
    route();
  }

  document.getElementById('login-form').addEventListener('submit', function (event) {
    event.preventDefault();
    var input = document.getElementById('api-key');
    var message = document.getElementById('login-error');
    message.textContent = '';
    api('/dashboard/login', { method: 'POST', body: { api_key: input.value.trim() }, allow401: true })
      .then(function () { input.value = ''; return start(); })
      .catch(function (error) { message.textContent = error.message; });
  });
  document.getElementById('logout').addEventListener('click', function () {
    api('/dashboard/logout', { method: 'POST' }).then(showLogin, showLogin);
  });
  window.addEventListener('hashchange', function () { if (!document.getElementById('nav').hidden) route(); });
  start().catch(showError);
})();
`;
