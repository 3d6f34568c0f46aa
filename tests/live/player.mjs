// Drives Debian's Chromium (headless) with playwright-core for the live suites (tests/live/conftest.py: Player).
// Protocol: one JSON command per stdin line, one JSON report per stdout line.
//   {"cmd":"open","id":"hls","url":"http://127.0.0.1:P/live/player.html?kind=hls&src=..."}
//   {"cmd":"eval","id":"hls","js":"seekTo(10)","seq":3}         -> {"type":"result","seq":3,"value":...}
//   {"cmd":"screenshot","id":"hls","path":"/abs.png","seq":4}  -> {"type":"result","seq":4,"value":"/abs.png"}
//   {"cmd":"close","id":"hls"}   {"cmd":"quit"}
// Every `interval` ms: {"type":"state","id":..,"t":<unix s>, ...window.playerState()} for each open page.
import { createRequire } from 'node:module';
import readline from 'node:readline';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(new URL('../js/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const cfg = JSON.parse(process.argv[2] || '{}');
const interval = cfg.interval || 250;
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rms-edge-chromium-'));
let ctx;
try {
  ctx = await chromium.launchPersistentContext(userDir, {
    executablePath: cfg.executablePath || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 660, height: 420 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync',
           '--autoplay-policy=no-user-gesture-required'],
  });
} catch (e) {
  emit({ type: 'fatal', message: 'cannot launch chromium: ' + String(e) });
  process.exit(2);
}
const browserVersion = ctx.browser() ? ctx.browser().version() : null;
emit({ type: 'ready', browserVersion });

const pages = new Map();
let quitting = false;

async function poll() {
  for (const [id, page] of pages) {
    try {
      const s = await page.evaluate(() => (window.playerState ? window.playerState() : null));
      if (s) emit({ type: 'state', id, t: Date.now() / 1000, ...s });
    } catch (e) {
      if (!quitting && pages.has(id)) emit({ type: 'poll_error', id, message: String(e) });
    }
  }
}
const timer = setInterval(poll, interval);

async function handle(cmd) {
  const reply = (value, error) => emit({ type: 'result', seq: cmd.seq ?? null, id: cmd.id, value, error });
  try {
    if (cmd.cmd === 'open') {
      const page = await ctx.newPage();
      page.on('console', (m) => emit({ type: 'console', id: cmd.id, level: m.type(), text: m.text().slice(0, 2000) }));
      page.on('pageerror', (e) => emit({ type: 'pageerror', id: cmd.id, text: String(e).slice(0, 2000) }));
      page.on('requestfailed', (r) => emit({ type: 'requestfailed', id: cmd.id, url: r.url(), failure: r.failure() && r.failure().errorText }));
      page.on('response', (r) => { if (r.status() >= 400) emit({ type: 'http_error', id: cmd.id, url: r.url(), status: r.status() }); });
      await page.goto(cmd.url, { waitUntil: 'load' });
      pages.set(cmd.id, page);
      reply(true);
    } else if (cmd.cmd === 'eval') {
      const page = pages.get(cmd.id);
      reply(await page.evaluate(cmd.js));
    } else if (cmd.cmd === 'screenshot') {
      const page = pages.get(cmd.id);
      await page.screenshot({ path: cmd.path });
      reply(cmd.path);
    } else if (cmd.cmd === 'close') {
      const page = pages.get(cmd.id);
      pages.delete(cmd.id);
      if (page) await page.close();
      reply(true);
    } else if (cmd.cmd === 'quit') {
      await shutdown(0);
    } else {
      reply(null, 'unknown command ' + cmd.cmd);
    }
  } catch (e) {
    reply(null, String(e));
  }
}

async function shutdown(code) {
  if (quitting) return;
  quitting = true;
  clearInterval(timer);
  try { await ctx.close(); } catch (e) { /* already gone */ }
  fs.rmSync(userDir, { recursive: true, force: true });
  emit({ type: 'bye' });
  process.exit(code);
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => { if (line.trim()) handle(JSON.parse(line)); });
rl.on('close', () => shutdown(0));
process.on('SIGTERM', () => shutdown(0));
