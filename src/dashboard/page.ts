/**
 * The dashboard's one HTML page. Plain HTML, no build step: the script (`app-script.ts`) fills
 * `#view` from the JSON API; until a session exists it shows the login form.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>rendermill dashboard</title>
    <link rel="stylesheet" href="/dashboard/app.css" />
    <script src="/dashboard/app.js" defer></script>
  </head>
  <body>
    <header class="top">
      <a class="brand" href="#/">rendermill</a>
      <nav id="nav" hidden>
        <a href="#/">Batches &amp; schedules</a>
        <a id="admin-link" href="/admin/queues" hidden>Queues (Bull Board)</a>
        <span id="who" class="who"></span>
        <button id="logout" type="button">Log out</button>
      </nav>
    </header>
    <main>
      <section id="login" class="login" hidden>
        <h1>Log in</h1>
        <form id="login-form">
          <label for="api-key">API key</label>
          <input id="api-key" name="api_key" type="password" autocomplete="off" spellcheck="false" required />
          <button type="submit">Log in</button>
          <p id="login-error" class="error" role="alert"></p>
        </form>
        <p class="hint">
          Paste one of your API keys (the one you send as <code>Authorization: Bearer …</code>).
          It is exchanged for a session cookie that lasts 12 hours; the key is not kept in the browser.
        </p>
      </section>
      <section id="view" hidden></section>
    </main>
  </body>
</html>
`;
