// The dashboard in a real browser (see test/helpers/browser.ts) driven by playwright-core, against a real server
// on a manual clock. The page follows the /ws subscription (with live pushes on every change, as the
// manual clock does not move between rounds) and samples /metrics (?poll= keeps it fast).

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, newPage } from '../helpers/browser.ts';
import { startServer, T0, type TestServer } from '../helpers/server.ts';

// Saved as a test artifact on every run; TOPTALLY_UPDATE_DOCS=1 also refreshes the README's copy.
const ARTIFACT = new URL('../../test-artifacts/dashboard.png', import.meta.url);
const DOCS_COPY = new URL('../../docs/dashboard.png', import.meta.url);
const WAIT_MS = 10_000;

const minuteStart = Math.floor(T0 / 60) * 60;
const hourStart = Math.floor(T0 / 3600) * 3600;

let browser: Browser;
before(async () => {
  ({ browser } = await launchBrowser());
});
after(() => browser?.close());

type Row = [domain: string, count: string];

/** Counters spreading `totals` over three seconds from `second`. */
function counters(second: number, totals: Iterable<[string, number]>): object[] {
  return [0, 1, 2].map((k) => {
    const counter: Record<string, number> = { timestamp: second + k * 7 };
    for (const [domain, total] of totals) counter[domain] = Math.floor(total / 3) + (k === 0 ? total % 3 : 0);
    return counter;
  });
}

/** The rows the page should show for these totals: top 10, count descending, ties by domain. */
function topRows(...parts: Iterable<[string, number]>[]): Row[] {
  const sums = new Map<string, number>();
  for (const part of parts) for (const [domain, n] of part) sums.set(domain, (sums.get(domain) ?? 0) + n);
  const ranked = [...sums].sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1));
  return ranked.slice(0, 10).map(([domain, total]) => [domain, total.toLocaleString('en')]);
}

const SITES = [
  'example.com', 'api.example.com', 'cdn.shop.test', 'static.news.test', 'mail.example.org', 'auth.example.net',
  'img.photos.test', 'search.example.com', 'video.stream.test', 'docs.example.dev', 'status.example.io', 'blog.example.org',
];
const zipf = (scale: number, shift: number): [string, number][] =>
  SITES.map((site, i) => [site, Math.round(scale / ((i + shift) % SITES.length + 1) ** 1.1)]);

async function rows(page: Page, panel: string): Promise<Row[]> {
  return page.$$eval(`#${panel} tbody tr`, (trs) =>
    trs.map((tr) => [...(tr as HTMLTableRowElement).cells].map((td) => td.textContent) as Row),
  );
}

/** Waits until the panel's table shows `expected`; on timeout, fails showing what it does show. */
async function shows(page: Page, panel: string, expected: Row[]): Promise<void> {
  await page
    .waitForFunction(
      ({ id, want }: { id: string; want: string }) => {
        const trs = [...document.querySelectorAll(`#${id} tbody tr`)] as HTMLTableRowElement[];
        return JSON.stringify(trs.map((tr) => [...tr.cells].map((td) => td.textContent))) === want;
      },
      { id: panel, want: JSON.stringify(expected) },
      { timeout: WAIT_MS },
    )
    .catch(() => undefined);
  assert.deepEqual(await rows(page, panel), expected, `panel #${panel}`);
}

async function rangeOf(page: Page, panel: string): Promise<string> {
  return (await page.textContent(`#${panel} .range`)) ?? '';
}

/**
 * The page, with everything that went wrong in it: script errors, console errors (a failed load
 * such as a favicon 404 is one) and answers of 400 or more.
 */
async function openDashboard(
  s: TestServer,
  { width = 1280, height = 760, query = '' } = {},
): Promise<{ page: Page; errors: string[] }> {
  const page = await newPage(browser, { viewport: { width, height } });
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`page error: ${err.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400) errors.push(`${response.status()} ${response.url()}`);
  });
  await page.goto(`${s.url}/?poll=40${query}`);
  return { page, errors };
}

const state = (page: Page): Promise<string | undefined> => page.evaluate(() => document.getElementById('connection')!.dataset.state);

test('the dashboard shows the top 10 of the last minute, hour and open minute, and follows the clock', async (t) => {
  const s = await startServer(t, { liveInterval: 0 });
  const lastMinute = zipf(9000, 0);
  const lastHour = zipf(420_000, 3);
  assert.equal((await s.post(counters(minuteStart - 60 + 4, lastMinute))).status, 200);
  assert.equal((await s.post(counters(hourStart - 3600 + 1800, lastHour))).status, 200);

  const { page, errors } = await openDashboard(s);
  t.after(() => page.close());
  await shows(page, 'minute', topRows(lastMinute));
  await shows(page, 'hour', topRows(lastHour));
  await shows(page, 'open', []);
  assert.equal(await rangeOf(page, 'minute'), '2020-12-16 07:09–07:10 UTC');
  assert.equal(await rangeOf(page, 'hour'), '2020-12-16 06:00–07:00 UTC');
  await page.waitForFunction(() => document.getElementById('connection')!.dataset.state === 'live', null, { timeout: WAIT_MS });

  // Counters for the open minute arrive in rounds of different sizes while the page samples the
  // ingest rate; each round waits for two samples, so one of them saw it whole.
  const open: [string, number][][] = [];
  for (const [round, domains] of [4, 12, 7, 12, 2, 9].entries()) {
    const points = Number((await page.getAttribute('#rate', 'data-points')) ?? 0);
    open.push(zipf(300 * (round + 1), 6).slice(0, domains));
    assert.equal((await s.post(counters(minuteStart + round * 5, open[round]))).status, 200);
    await page.waitForFunction((n: number) => Number(document.getElementById('rate')!.dataset.points) >= n, points + 2, {
      timeout: WAIT_MS,
    });
  }
  await shows(page, 'open', topRows(...open));
  assert.equal(await rangeOf(page, 'open'), '2020-12-16 07:10–07:11 UTC');
  assert.match((await page.textContent('#rate .now')) ?? '', /^[0-9,]+ \/s$/);
  // The README's screenshot shows the live WebSocket mode.
  assert.equal(await state(page), 'live');
  assert.equal(await page.textContent('#connection'), 'live · WebSocket');
  mkdirSync(new URL('.', ARTIFACT), { recursive: true });
  await page.screenshot({ path: ARTIFACT.pathname, fullPage: true });
  if (process.env.TOPTALLY_UPDATE_DOCS === '1') await page.screenshot({ path: DOCS_COPY.pathname, fullPage: true });

  // The minute closes: the open minute's counts become the last round minute, the new one is empty.
  s.clock.set((minuteStart + 60) * 1000);
  await shows(page, 'minute', topRows(...open));
  await shows(page, 'open', []);
  assert.equal(await rangeOf(page, 'minute'), '2020-12-16 07:10–07:11 UTC');

  // The hour closes: it holds both minutes.
  s.clock.set((hourStart + 3600 + 30) * 1000);
  await shows(page, 'hour', topRows(lastMinute, ...open));
  assert.equal(await rangeOf(page, 'hour'), '2020-12-16 07:00–08:00 UTC');
  // The page names its icon (a browser asks for /favicon.ico, a 404, when it does not), and it is served.
  const icon = await page.getAttribute('link[rel="icon"]', 'href');
  assert.ok(icon, 'the page names an icon');
  const served = await s.get(icon);
  assert.deepEqual([served.status, served.headers['content-type']], [200, 'image/svg+xml']);
  assert.deepEqual(errors, []);
});

test('the read token is kept in the page storage and sent on every request and on the WebSocket', async (t) => {
  const s = await startServer(t);
  const { page, errors } = await openDashboard(s);
  t.after(() => page.close());
  await page.waitForFunction(() => document.getElementById('connection')!.dataset.state === 'live', null, {
    timeout: WAIT_MS,
  });

  // A new token reconnects the socket, and the page fills its panels over HTTP once it is open.
  const statsRequest = page.waitForRequest((req) => req.url().includes('/api/stats') && 'authorization' in req.headers(), {
    timeout: WAIT_MS,
  });
  const socket = page.waitForEvent('websocket', { predicate: (ws) => ws.url().includes('token='), timeout: WAIT_MS });
  await page.fill('#token', 's3cret');
  await page.click('#token-form button');
  assert.equal((await statsRequest).headers()['authorization'], 'Bearer s3cret');
  assert.equal(new URL((await socket).url()).searchParams.get('token'), 's3cret');

  await page.reload();
  assert.equal(await page.inputValue('#token'), 's3cret');
  assert.equal(await page.evaluate(() => localStorage.getItem('toptally.readToken')), 's3cret');
  assert.deepEqual(errors, []);
});

test('at phone width (390 px) the page fits the screen, the forms included; panels are marked stale when the server goes', async (t) => {
  const s = await startServer(t);
  assert.equal((await s.post(counters(minuteStart - 60 + 4, zipf(900, 0)))).status, 200);
  const { page, errors } = await openDashboard(s, { width: 390, height: 844 });
  t.after(() => page.close());
  await shows(page, 'minute', topRows(zipf(900, 0)));
  await page.waitForFunction(() => document.getElementById('connection')!.dataset.state === 'live', null, { timeout: WAIT_MS });
  assert.equal(await page.evaluate(() => document.documentElement.scrollWidth), 390, 'nothing is wider than the screen');
  for (const selector of ['#token', '#token-form button', '#at', '#at-form button', '#minute', '#rate']) {
    const box = await page.locator(selector).boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= 390, `${selector} is on screen: ${JSON.stringify(box)}`);
  }
  assert.equal(await page.locator('.panel.is-stale').count(), 0);

  assert.deepEqual(errors, [], 'nothing failed while the server was up');

  // The server stops: nothing is pushed, the top-N queries fail, and the three top-N panels say so.
  // (The stopped server object still answers /metrics on the page's open keep-alive connection.)
  await s.app.stop();
  // The socket's close marks them at once; the failed poll after it then says the server is gone.
  await page
    .waitForFunction(
      () =>
        document.querySelectorAll('#minute.is-stale, #hour.is-stale, #open.is-stale').length === 3 &&
        document.getElementById('connection')!.dataset.state === 'offline',
      null,
      { timeout: WAIT_MS },
    )
    .catch(() => undefined);
  assert.equal(await page.locator('#minute.is-stale, #hour.is-stale, #open.is-stale').count(), 3);
  assert.equal(await state(page), 'offline');
  assert.ok(await page.locator('#minute .stale').isVisible());
});

test('?at= shows the windows as they were at a past instant, polled, with the instant in the header', async (t) => {
  const s = await startServer(t);
  const pastMinute = minuteStart - 30 * 60;
  const past = zipf(5000, 2);
  assert.equal((await s.post(counters(pastMinute + 4, past))).status, 200);
  assert.equal((await s.post(counters(minuteStart - 60 + 4, zipf(900, 0)))).status, 200);
  const at = pastMinute + 60 + 20; // 20 s into the minute after: its last round minute is pastMinute
  const sockets: string[] = [];
  const { page, errors } = await openDashboard(s, { query: `&at=${at}` });
  page.on('websocket', (ws) => sockets.push(ws.url()));
  t.after(() => page.close());
  await shows(page, 'minute', topRows(past));
  assert.equal(await rangeOf(page, 'minute'), '2020-12-16 06:40–06:41 UTC');
  await shows(page, 'open', []);
  assert.equal(await rangeOf(page, 'open'), '2020-12-16 06:41–06:42 UTC');
  assert.equal(await rangeOf(page, 'hour'), '2020-12-16 05:00–06:00 UTC');
  assert.equal(await state(page), 'past');
  assert.equal(await page.textContent('#connection'), 'at 2020-12-16 06:41 UTC · not live');
  assert.equal(await page.inputValue('#at'), '2020-12-16T06:41');
  assert.deepEqual(sockets, [], 'a past instant opens no WebSocket');

  // The header's field takes a UTC date-time and reloads with it; an empty one goes back to live.
  await Promise.all([page.waitForURL(/at=1608100500/), page.fill('#at', '2020-12-16T06:35').then(() => page.click('#at-form button'))]);
  await shows(page, 'minute', []);
  assert.equal(await rangeOf(page, 'minute'), '2020-12-16 06:34–06:35 UTC');
  await Promise.all([page.waitForURL((url) => !url.search.includes('at=')), page.fill('#at', '').then(() => page.click('#at-form button'))]);
  await page.waitForFunction(() => document.getElementById('connection')!.dataset.state === 'live', null, { timeout: WAIT_MS });
  await shows(page, 'minute', topRows(zipf(900, 0)));
  assert.deepEqual(errors, []);
});
