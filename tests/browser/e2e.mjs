// End-to-end test of the web admin page in headless Chromium (Debian's
// /usr/bin/chromium driven by playwright-core). Run by
// tests/integration/t_web.sh, which starts portierd and an nginx TLS backend
// and passes them in the environment:
//
//   PORTIER_URL      http://127.0.0.1:PORT of --api
//   PORTIER_TOKEN    the admin token
//   BACKEND_SERVER   host:port of the nginx TLS backend
//   BACKEND_BODY     what that backend answers on /
//   HTTPS_PORT       portier's --https port; CA_FILE signs the backend's certificate
//   CERT_FILE, KEY_FILE   a certificate and key to upload (when certificates exist)
//   SHOTS            directory for screenshots (optional)
//   CHROMIUM         browser binary (default /usr/bin/chromium)
//
// Prints TAP-like "ok - ..." / "not ok - ..." lines and exits 1 on any failure.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = process.env;
const BASE = env.PORTIER_URL;
const TOKEN = env.PORTIER_TOKEN;
const BACKEND_SERVER = env.BACKEND_SERVER;
const BACKEND_BODY = env.BACKEND_BODY || '';
const SHOTS = env.SHOTS || '';
const STREAM_PORT = env.STREAM_PORT || '';
for (const k of ['PORTIER_URL', 'PORTIER_TOKEN', 'BACKEND_SERVER', 'HTTPS_PORT', 'CA_FILE']) {
  if (!env[k]) {
    console.log(`not ok - environment variable ${k} is set`);
    process.exit(1);
  }
}

let fails = 0;
let count = 0;
function report(good, desc, detail) {
  count++;
  console.log(`${good ? 'ok' : 'not ok'} - ${desc}`);
  if (!good) {
    fails++;
    if (detail) for (const l of String(detail).split('\n').slice(0, 12)) console.log(`#   ${l}`);
  }
}
// step(desc, fn): fn throws (or returns a string explaining) on failure.
async function step(desc, fn) {
  try {
    const why = await fn();
    report(typeof why !== 'string', desc,
      why + (pageErrors.length ? '\npage errors: ' + pageErrors.join('\n') : ''));
    return typeof why !== 'string';
  } catch (e) {
    report(false, desc, (e && e.stack ? e.stack : String(e)) +
      (pageErrors.length ? '\npage errors: ' + pageErrors.join('\n') : ''));
    return false;
  }
}

// Polls fn until it returns a truthy value; throws with the last value after ms.
async function until(fn, ms = 10000, what = 'condition') {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try { last = await fn(); } catch (e) { last = e; }
    if (last && !(last instanceof Error)) return last;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function apiGet(path) {
  const r = await fetch(BASE + '/api/v1' + path, { headers: { Authorization: 'Bearer ' + TOKEN } });
  return { status: r.status, body: r.status === 204 ? null : await r.json().catch(() => null) };
}
async function apiSend(method, path, body) {
  const r = await fetch(BASE + '/api/v1' + path, {
    method,
    headers: { Authorization: 'Bearer ' + TOKEN, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return r.status;
}

function curlThroughPortier(name) {
  return execFileSync('curl', ['-sS', '--max-time', '15', '--cacert', env.CA_FILE,
    '--resolve', `${name}:${env.HTTPS_PORT}:127.0.0.1`, `https://${name}:${env.HTTPS_PORT}/`],
  { encoding: 'utf8' }).trim();
}

const profile = mkdtempSync(join(tmpdir(), 'portier-chromium-'));
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    viewport: { width: 1100, height: 760 },
    timeout: 60000,
  });
} catch (e) {
  report(false, 'Chromium starts (playwright-core, /usr/bin/chromium)', e.stack);
  rmSync(profile, { recursive: true, force: true });
  process.exit(1);
}
report(true, 'Chromium starts (playwright-core, /usr/bin/chromium)');

const page = context.pages()[0] || await context.newPage();
page.setDefaultTimeout(10000);
const dialogs = [];
const pageErrors = [];
const cspErrors = [];
page.on('dialog', (d) => { dialogs.push(`${d.type()}: ${d.message()}`); d.dismiss().catch(() => {}); });
page.on('pageerror', (e) => pageErrors.push(String(e && e.stack ? e.stack : e)));
page.on('console', (m) => {
  if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) cspErrors.push(m.text());
});

const shot = async (name) => {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  // The picture shows the view, not the test's last action.
  await page.evaluate(() => {
    for (const p of document.querySelectorAll('.form-status')) p.textContent = '';
    if (document.activeElement) document.activeElement.blur();
  });
  await page.waitForTimeout(150);
  await page.screenshot({ path: join(SHOTS, `screenshot-${name}.png`), fullPage: true });
};
const nav = async (view) => {
  await page.click(`#nav a[href="#${view}"]`);
  await page.locator(`#view-${view}`).waitFor({ state: 'visible' });
};
const row = (tbody, key) => page.locator(`#${tbody}-body tr[data-key="${key}"]`);
const textOf = async (sel) => (await page.locator(sel).textContent()) || '';

try {
  // ---- log in -------------------------------------------------------------
  await step('page loads and asks for the token', async () => {
    const resp = await page.goto(BASE + '/', { waitUntil: 'load' });
    if (resp.status() !== 200) return `status ${resp.status()}`;
    await page.locator('#login-token').waitFor({ state: 'visible' });
    if (await page.locator('#nav').isVisible()) return 'navigation visible before login';
  });

  await step('a wrong token is refused, with the error next to the field', async () => {
    await page.fill('#login-token', 'not-the-token');
    await page.click('#login-form button[type="submit"]');
    const t = await until(async () => (await textOf('#login-token-error')) || false, 10000, 'login error');
    if (!/refused|401/i.test(t)) return `error text: ${t}`;
    if (await page.locator('#nav').isVisible()) return 'logged in with a wrong token';
  });

  await step('logging in with the admin token shows the domains view and the config version', async () => {
    await page.fill('#login-token', TOKEN);
    await page.click('#login-form button[type="submit"]');
    await page.locator('#view-domains').waitFor({ state: 'visible' });
    const s = await until(async () => { const t = await textOf('#summary'); return /Config version \d+/.test(t) && t; }, 10000, 'summary');
    if (!/live|lagging/.test(s)) return `summary: ${s}`;
  });

  await step('the token is kept in sessionStorage and not asked again after a reload', async () => {
    const stored = await page.evaluate(() => sessionStorage.getItem('portier.token'));
    if (stored !== TOKEN) return 'sessionStorage does not hold the token';
    const local = await page.evaluate(() => JSON.stringify(localStorage));
    if (local.includes(TOKEN)) return 'the token leaked into localStorage';
    await page.reload({ waitUntil: 'load' });
    await page.locator('#view-domains').waitFor({ state: 'visible' });
    if (await page.locator('#login').isVisible()) return 'login form shown again';
  });

  // ---- backend: validation error, then create ---------------------------------
  await nav('backends');
  await step('a bad backend server shows the API\'s error next to the servers field', async () => {
    await page.fill('#backend-name', 'web1');
    await page.fill('#backend-servers', '127.0.0.1:99999');
    await page.click('#backend-form button[type="submit"]');
    const t = await until(async () => (await textOf('#backend-servers-error')) || false, 10000, 'servers error');
    if (!t.includes('servers[0]')) return `error text: ${t}`;
    if ((await page.getAttribute('#backend-servers', 'aria-invalid')) !== 'true') return 'field not marked invalid';
    if ((await textOf('#backend-name-error')) !== '') return 'error shown next to the wrong field';
    const list = await apiGet('/backends');
    if (list.body.backends.some((b) => b.name === 'web1')) return 'the invalid backend was created';
  });

  await step('markup in an API error message is shown as text', async () => {
    await page.fill('#backend-name', '<b>x</b>');
    await page.fill('#backend-servers', BACKEND_SERVER);
    await page.click('#backend-form button[type="submit"]');
    const t = await until(async () => (await textOf('#backend-name-error')) || false, 10000, 'name error');
    if (!t.includes('<b>x</b>')) return `error text: ${t}`;
    if (await page.locator('#backend-form b').count() !== 0) return 'a <b> element was created';
  });

  await step('a backend created through the form is listed', async () => {
    await page.fill('#backend-name', 'web1');
    await page.fill('#backend-servers', BACKEND_SERVER);
    await page.selectOption('#backend-pp', 'none');
    await page.click('#backend-form button[type="submit"]');
    await row('backends', 'web1').waitFor({ state: 'visible' });
    const t = await row('backends', 'web1').textContent();
    if (!t.includes(BACKEND_SERVER)) return `row: ${t}`;
    const st = await textOf('#backend-form .form-status');
    if (!/Saved backend web1/.test(st)) return `status: ${st}`;
    if ((await textOf('#backend-servers-error')) !== '') return 'old error still shown';
  });

  await step('editing a backend fills the form with its values', async () => {
    await row('backends', 'web1').locator('button[data-act="edit"]').click();
    if (!(await page.locator('#backend-name').evaluate((e) => e.readOnly))) return 'name is editable';
    if ((await page.inputValue('#backend-servers')) !== BACKEND_SERVER) return 'servers not filled';
    await page.click('#backend-form button.cancel');
    if ((await page.inputValue('#backend-name')) !== '') return 'cancel did not reset the form';
  });

  // ---- stream ---------------------------------------------------------------------
  if (STREAM_PORT) {
    await nav('streams');
    await step('a stream listen address with a host name shows the API\'s error next to it', async () => {
      await page.fill('#stream-name', 'smtp');
      await page.selectOption('#stream-mode', 'tcp');
      await page.fill('#stream-listen', 'mail.test:25');
      await page.selectOption('#stream-backend', 'web1');
      await page.click('#stream-form button[type="submit"]');
      const t = await until(async () => (await textOf('#stream-listen-error')) || false, 10000, 'listen error');
      if (!t.includes('listen[0]')) return `error text: ${t}`;
      if ((await apiGet('/streams/smtp')).status !== 404) return 'the invalid stream was created';
    });

    await step('a tcp stream created through the form is listed and listens', async () => {
      await page.fill('#stream-listen', '127.0.0.1:' + STREAM_PORT);
      await page.click('#stream-form button[type="submit"]');
      const r = row('streams', 'smtp');
      await r.waitFor({ state: 'visible' });
      const t = await r.textContent();
      if (!t.includes('127.0.0.1:' + STREAM_PORT) || !t.includes('web1')) return `row: ${t}`;
      const st = await textOf('#stream-form .form-status');
      if (!/Saved stream smtp/.test(st)) return `status: ${st}`;
      const got = await apiGet('/streams/smtp');
      if (got.status !== 200 || got.body.listen[0] !== '127.0.0.1:' + STREAM_PORT) return `API: ${JSON.stringify(got.body)}`;
    });

    await step('the backends view counts the stream among the backend\'s users', async () => {
      await nav('backends');
      const t = await until(async () => { const x = await row('backends', 'web1').locator('td[data-label="Used by"]').textContent(); return x.includes('stream smtp') && x; });
      if (!t) return 'not shown';
      await nav('streams');
    });

    await step('a stream is deleted after a confirming second click', async () => {
      const del = row('streams', 'smtp').locator('button[data-act="delete"]');
      await del.click();
      await until(async () => (await del.textContent()).startsWith('Confirm'), 3000, 'confirm state');
      await del.click();
      await row('streams', 'smtp').waitFor({ state: 'detached' });
      if ((await apiGet('/streams/smtp')).status !== 404) return 'still in the API';
    });
  }

  // ---- domain ---------------------------------------------------------------------
  await nav('domains');
  await step('a bad domain name shows the API\'s error next to the name field', async () => {
    await page.fill('#domain-name', 'bad..name');
    await page.selectOption('#domain-mode', 'passthrough');
    await page.selectOption('#domain-backend', 'web1');
    await page.click('#domain-form button[type="submit"]');
    const t = await until(async () => (await textOf('#domain-name-error')) || false, 10000, 'name error');
    if (!t.startsWith('name')) return `error text: ${t}`;
  });

  await step('a passthrough domain created through the form is listed, live', async () => {
    await page.fill('#domain-name', 'app.web.test');
    await page.selectOption('#domain-mode', 'passthrough');
    await page.selectOption('#domain-backend', 'web1');
    await page.click('#domain-form button[type="submit"]');
    const r = row('domains', 'app.web.test');
    await r.waitFor({ state: 'visible' });
    const cells = await r.locator('th, td').allTextContents();
    if (cells[1] !== 'passthrough' || cells[2] !== 'web1') return `cells: ${JSON.stringify(cells)}`;
    await until(async () => (await r.locator('td[data-label="State"]').textContent()).includes('live'), 10000, 'live');
  });

  await step('the route works: curl through portier reaches the nginx TLS backend', async () => {
    const body = await until(async () => {
      try { const b = curlThroughPortier('app.web.test'); return b === BACKEND_BODY && b; } catch (e) { return false; }
    }, 10000, 'backend body');
    if (body !== BACKEND_BODY) return `got: ${body}`;
  });

  await step('the backends view shows which domain uses a backend', async () => {
    await nav('backends');
    const t = await until(async () => { const x = await row('backends', 'web1').locator('td[data-label="Used by"]').textContent(); return x.includes('app.web.test') && x; });
    if (!t) return 'not shown';
  });

  await step('deleting a backend in use shows the API\'s conflict', async () => {
    const del = row('backends', 'web1').locator('button[data-act="delete"]');
    await del.click();
    await until(async () => (await del.textContent()).startsWith('Confirm'), 3000, 'confirm state');
    await del.click();
    const t = await until(async () => (await textOf('#backend-form .form-status')).includes('Cannot delete') && textOf('#backend-form .form-status'));
    if (!/used by/.test(t)) return `status: ${t}`;
    if ((await apiGet('/backends/web1')).status !== 200) return 'backend is gone';
  });

  await step('a domain is deleted after a confirming second click', async () => {
    if (await apiSend('PUT', '/domains/tmp.web.test', { mode: 'passthrough', backend: 'web1' }) !== 201) return 'setup failed';
    await nav('domains');
    const r = row('domains', 'tmp.web.test');
    await r.waitFor({ state: 'visible' }); // appears by polling alone
    const del = r.locator('button[data-act="delete"]');
    await del.click();
    if ((await apiGet('/domains/tmp.web.test')).status !== 200) return 'deleted on the first click';
    await del.click();
    await r.waitFor({ state: 'detached' });
    if ((await apiGet('/domains/tmp.web.test')).status !== 404) return 'still in the API';
  });

  // ---- bans ------------------------------------------------------------------------------
  await nav('bans');
  const XSS = '<img src=x onerror=alert(1)>';
  await step('a ban added through the form is listed with its time left', async () => {
    await page.fill('#ban-ip', '203.0.113.7');
    await page.fill('#ban-duration', '2');
    await page.selectOption('#ban-unit', '3600');
    await page.fill('#ban-reason', XSS);
    await page.click('#ban-form button[type="submit"]');
    const r = row('bans', '203.0.113.7');
    await r.waitFor({ state: 'visible' });
    const left = await r.locator('td[data-label="Time left"]').textContent();
    if (!/^1 h (59|58) min$/.test(left)) return `time left: ${left}`;
    const api = await apiGet('/bans');
    if (!api.body.bans.some((b) => b.ip === '203.0.113.7' && b.expires)) return 'not in the API';
  });

  await step('XSS: a ban reason with markup shows literally, no element, no dialog', async () => {
    const cell = row('bans', '203.0.113.7').locator('td[data-label="Reason"]');
    const t = await cell.textContent();
    if (t !== XSS) return `reason cell: ${t}`;
    await page.waitForTimeout(500);
    if (await page.locator('img').count() !== 0) return 'an <img> element exists';
    if (await cell.locator('*').count() !== 0) return 'the reason cell has child elements';
    if (dialogs.length) return `dialogs: ${dialogs.join(', ')}`;
  });

  await step('a bad ban address shows the API\'s error next to the field', async () => {
    await page.fill('#ban-ip', '300.1.2.3');
    await page.click('#ban-form button[type="submit"]');
    const t = await until(async () => (await textOf('#ban-ip-error')) || false);
    if (!t.startsWith('ip')) return `error text: ${t}`;
    await page.fill('#ban-ip', '');
  });

  // Realistic data for the screenshots (and for the offload rendering).
  await apiSend('PUT', '/backends/yunohost1', { servers: ['192.0.2.11:443'], proxy_protocol: 'v2', http_servers: ['192.0.2.11:80'] });
  await apiSend('PUT', '/backends/nas', { servers: ['192.0.2.20:5001'], tls: true, tls_verify: false });
  await apiSend('PUT', '/domains/cloud.example.org', { mode: 'passthrough', backend: 'yunohost1' });
  await apiSend('PUT', '/domains/*.apps.example.org', { mode: 'passthrough', backend: 'yunohost1' });
  await apiSend('PUT', '/domains/photos.example.org', { mode: 'offload', backend: 'nas', certificate: 'manual', hsts: true });
  await apiSend('POST', '/bans', { ip: '198.51.100.23', duration: 86400, reason: 'fail2ban sshd' });
  await apiSend('POST', '/bans', { ip: '2001:db8:bad::/48', reason: 'abuse report' });

  await step('bans view lists a permanent ban as such', async () => {
    const r = row('bans', '2001:db8:bad::/48');
    await r.waitFor({ state: 'visible' });
    const t = await r.locator('td[data-label="Time left"]').textContent();
    if (!/permanent/.test(t)) return `time left: ${t}`;
  });

  await step('a ban is removed from the table', async () => {
    const r = row('bans', '203.0.113.7');
    await r.locator('button[data-act="remove"]').click();
    await r.waitFor({ state: 'detached' });
    const api = await apiGet('/bans');
    if (api.body.bans.some((b) => b.ip === '203.0.113.7')) return 'still in the API';
    const st = await textOf('#ban-form .form-status');
    if (!st.includes('Removed the ban on 203.0.113.7')) return `status: ${st}`;
  });
  await page.fill('#ban-ip', '');
  await shot('bans');

  // ---- certificates (api/certs.c may be absent: the view must degrade) -------------------------
  await nav('certificates');
  const certsStatus = (await apiGet('/certificates')).status;
  if (certsStatus === 404) {
    await step('certificates view degrades to a notice when the API has no certificates (404)', async () => {
      await page.locator('#certs-unavailable').waitFor({ state: 'visible' });
      if (await page.locator('#cert-form').isVisible()) return 'upload form still shown';
    });
  } else {
    await step('a certificate upload with a bad key shows the API\'s error', async () => {
      if (!env.CERT_FILE || !env.KEY_FILE) return 'CERT_FILE/KEY_FILE not given';
      await page.fill('#cert-pem', readFileSync(env.CERT_FILE, 'utf8'));
      await page.fill('#cert-key', 'not a key');
      await page.click('#cert-form button[type="submit"]');
      const t = await until(async () => {
        const xs = await page.locator('#cert-form [data-error-for]').allTextContents();
        return xs.join('').trim() || false;
      }, 10000, 'upload error');
      if (!t) return 'no error shown';
      if ((await apiGet('/certificates')).body.certificates.length !== 0) return 'something was stored';
    });
    await step('a certificate uploaded through the form is listed with its expiry', async () => {
      await page.fill('#cert-key', readFileSync(env.KEY_FILE, 'utf8'));
      await page.click('#cert-form button[type="submit"]');
      const r = page.locator('#certs-body tr').first();
      await r.waitFor({ state: 'visible' });
      const t = await until(async () => { const x = await r.textContent(); return /photos\.example\.org/.test(x) && /days? left|within a day/.test(x) && x; }, 10000, 'certificate row');
      if (!/valid/.test(t)) return `row: ${t}`;
      if ((await page.inputValue('#cert-key')) !== '') return 'the key stays in the form';
    });
  }
  await shot('certificates');

  // ---- domains: offload form, certificate column -------------------------------------------------
  await nav('domains');
  await step('offload form: a reserved response header is refused next to the headers field', async () => {
    await page.fill('#domain-name', 'shop.example.org');
    await page.selectOption('#domain-mode', 'offload');
    await page.locator('#domain-offload').waitFor({ state: 'visible' });
    await page.selectOption('#domain-backend', 'nas');
    await page.fill('#domain-headers', 'Content-Length: 5');
    await page.click('#domain-form button[type="submit"]');
    const t = await until(async () => (await textOf('#domain-headers-error')) || false, 10000, 'headers error');
    if (!t.includes('response_headers.Content-Length')) return `error text: ${t}`;
    await page.fill('#domain-headers', 'X-Frame-Options: SAMEORIGIN');
    await page.click('#domain-form button[type="submit"]');
    await row('domains', 'shop.example.org').waitFor({ state: 'visible' });
    const d = (await apiGet('/domains/shop.example.org')).body;
    if (d.mode !== 'offload' || d.response_headers['X-Frame-Options'] !== 'SAMEORIGIN') return JSON.stringify(d);
  });
  await step('editing a domain keeps its settings and saves the change', async () => {
    await row('domains', 'shop.example.org').locator('button[data-act="edit"]').click();
    if ((await page.inputValue('#domain-headers')) !== 'X-Frame-Options: SAMEORIGIN') return 'headers not filled';
    if ((await page.inputValue('#domain-mode')) !== 'offload') return 'mode not filled';
    await page.check('#domain-hsts');
    await page.click('#domain-form button[type="submit"]');
    await until(async () => (await textOf('#domain-form .form-status')).includes('Saved domain shop.example.org'));
    const d = (await apiGet('/domains/shop.example.org')).body;
    if (d.hsts !== true || d.response_headers['X-Frame-Options'] !== 'SAMEORIGIN') return JSON.stringify(d);
    if ((await apiSend('DELETE', '/domains/shop.example.org')) !== 204) return 'cleanup failed';
    await row('domains', 'shop.example.org').waitFor({ state: 'detached' });
  });
  await step('domains view: certificate status and days to expiry in words', async () => {
    const r = row('domains', 'photos.example.org');
    await r.waitFor({ state: 'visible' });
    const want = certsStatus === 404 ? /none/ : /valid, (1 day left|\d+ days left|expires within a day)/;
    const t = await until(async () => { const x = await r.locator('td[data-label="Certificate"]').textContent(); return want.test(x) && x; }, 10000, 'certificate cell');
    if (!t) return 'no certificate status';
    const p = await row('domains', 'cloud.example.org').locator('td[data-label="Certificate"]').textContent();
    if (!/passthrough/.test(p)) return `passthrough certificate cell: ${p}`;
  });
  await shot('domains');

  // ---- backends ----------------------------------------------------------------------------------------
  await nav('backends');
  await row('backends', 'yunohost1').waitFor({ state: 'visible' });
  await shot('backends');
  await step('backends view: the nginx snippet is shown as text', async () => {
    await row('backends', 'yunohost1').locator('button[data-act="snippet"]').click();
    const t = await until(async () => { const x = await textOf('#snippet-text'); return x && !x.startsWith('Loading') && x; });
    if (!/proxy_protocol|real_ip/.test(t)) return `snippet: ${t.slice(0, 200)}`;
  });
  await page.click('#snippet-close');

  // ---- workers and live/lagging -------------------------------------------------------------------
  await nav('workers');
  await step('workers view lists each worker with its applied config version', async () => {
    const st = (await apiGet('/status')).body;
    await until(async () => (await page.locator('#workers-body tr').count()) === st.workers.length, 10000, 'worker rows');
    await until(async () => { const x = await textOf('#st-config'); return Number(x) >= st.config_version; }, 10000, 'config version');
    await until(async () => /live/.test(await textOf('#st-applied')), 10000, 'live');
    const states = await page.locator('#workers-body td[data-label="State"]').allTextContents();
    if (!states.every((s) => /up, current/.test(s))) return `states: ${states}`;
  });
  await shot('workers');

  await step('a worker that has not applied the config shows as lagging, then live again', async () => {
    const st = (await apiGet('/status')).body;
    const pid = st.workers.map((w) => w.pid).find((p) => Number.isInteger(p));
    if (!pid) return 'no worker pid';
    process.kill(pid, 'SIGSTOP');
    try {
      await apiSend('POST', '/bans', { ip: '192.0.2.99', duration: 60, reason: 'lag test' });
      await until(async () => /lagging/.test(await textOf('#summary')), 10000, 'lagging in the summary');
      await until(async () => /lagging/.test(await textOf('#st-applied')), 10000, 'lagging in the workers view');
      const behind = await page.locator('#workers-body td[data-label="State"]').allTextContents();
      if (!behind.some((s) => /behind|down/.test(s))) return `states: ${behind}`;
    } finally {
      try { process.kill(pid, 'SIGCONT'); } catch (e) { /* replaced by the supervisor */ }
    }
    await until(async () => /live/.test(await textOf('#summary')), 20000, 'live again');
    await apiSend('DELETE', '/bans/192.0.2.99');
  });

  // ---- phone width ------------------------------------------------------------------------------
  await page.setViewportSize({ width: 390, height: 844 });
  await nav('domains');
  await step('phone width: no horizontal scrolling, rows become labelled cards', async () => {
    await page.waitForTimeout(200);
    const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (over > 1) return `page is ${over}px wider than the screen`;
    const label = await row('domains', 'app.web.test').locator('td[data-label="Mode"]').evaluate(
      (td) => getComputedStyle(td, '::before').content);
    if (!/Mode/.test(label)) return `cell label: ${label}`;
  });
  await shot('phone');
  await page.setViewportSize({ width: 1100, height: 760 });

  // ---- log out ------------------------------------------------------------------------------------
  await step('logging out forgets the token and hides the data', async () => {
    await page.click('#logout');
    await page.locator('#login-token').waitFor({ state: 'visible' });
    if (await page.evaluate(() => sessionStorage.getItem('portier.token')) !== null) return 'token still stored';
    if (await page.locator('#domains-body tr').count() !== 0) return 'domain rows still in the page';
  });

  await step('no uncaught script error, no CSP violation, no dialog', async () => {
    const all = [...pageErrors, ...cspErrors, ...dialogs];
    if (all.length) return all.join('\n');
  });
} catch (e) {
  report(false, 'browser test ran to the end', e && e.stack ? e.stack : e);
} finally {
  await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}

console.log(`# browser: ${count - fails} of ${count} checks passed`);
process.exit(fails ? 1 : 0);
