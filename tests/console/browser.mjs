// Drives Debian's Chromium (headless) with playwright-core for the console suite (conftest.py: Browser).
// One JSON command per stdin line, one JSON reply per stdout line:
//   {"seq":1,"cmd":"goto","url":...}  {"cmd":"reload"}  {"cmd":"click","sel":...}  {"cmd":"fill","sel":...,"value":...}
//   {"cmd":"wait","sel":...,"state":"visible","ms":ms}  {"cmd":"text","sel":...}  {"cmd":"value","sel":...}
//   {"cmd":"eval","js":...}  {"cmd":"screenshot","path":...,"fullPage":true}  {"cmd":"viewport","width":..,"height":..}
//   {"cmd":"metrics"} (navigation timing and resources of the last load)  {"cmd":"quit"}
// Page errors, console errors and failed requests are reported as {"type":"event",...}.
import { createRequire } from 'node:module';
import readline from 'node:readline';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(new URL('../js/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const cfg = JSON.parse(process.argv[2] || '{}');
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rms-edge-console-chromium-'));
let ctx;
try {
  ctx = await chromium.launchPersistentContext(userDir, {
    executablePath: cfg.executablePath || '/usr/bin/chromium',
    headless: true,
    viewport: { width: cfg.width || 1280, height: cfg.height || 860 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync',
           '--autoplay-policy=no-user-gesture-required'],
  });
} catch (e) {
  emit({ type: 'fatal', message: 'cannot launch chromium: ' + String(e) });
  process.exit(2);
}
const page = ctx.pages()[0] || await ctx.newPage();
page.on('pageerror', (e) => emit({ type: 'event', kind: 'pageerror', text: String(e).slice(0, 2000) }));
page.on('console', (m) => { if (m.type() === 'error') emit({ type: 'event', kind: 'console', text: m.text().slice(0, 2000) }); });
page.on('requestfailed', (r) => emit({ type: 'event', kind: 'requestfailed', url: r.url(), failure: r.failure() && r.failure().errorText }));
page.on('response', (r) => { if (r.status() >= 400) emit({ type: 'event', kind: 'http', url: r.url(), status: r.status() }); });
page.on('dialog', (d) => d.accept());
emit({ type: 'ready', browserVersion: ctx.browser() ? ctx.browser().version() : null });

async function handle(c) {
  const reply = (value, error) => emit({ type: 'result', seq: c.seq, value, error });
  try {
    const t = c.ms ?? 15000;
    switch (c.cmd) {
      case 'goto': await page.goto(c.url, { waitUntil: 'load' }); return reply(page.url());
      case 'reload': await page.reload({ waitUntil: 'load' }); return reply(page.url());
      case 'click': await page.click(c.sel, { timeout: t }); return reply(true);
      case 'fill': await page.fill(c.sel, c.value, { timeout: t }); return reply(true);
      case 'select': await page.selectOption(c.sel, c.value, { timeout: t }); return reply(true);
      case 'wait': await page.waitForSelector(c.sel, { state: c.state || 'visible', timeout: t }); return reply(true);
      case 'text': return reply(await page.textContent(c.sel, { timeout: t }));
      case 'value': return reply(await page.inputValue(c.sel, { timeout: t }));
      case 'eval': return reply(await page.evaluate(c.js));
      case 'url': return reply(page.url());
      case 'screenshot': await page.screenshot({ path: c.path, fullPage: c.fullPage ?? true }); return reply(c.path);
      case 'viewport': await page.setViewportSize({ width: c.width, height: c.height }); return reply(true);
      case 'quit': await shutdown(); return undefined;
      default: return reply(null, 'unknown command ' + c.cmd);
    }
  } catch (e) {
    return reply(null, String(e).slice(0, 3000));
  }
}

let quitting = false;
async function shutdown() {
  if (quitting) return;
  quitting = true;
  try { await ctx.close(); } catch { /* already gone */ }
  fs.rmSync(userDir, { recursive: true, force: true });
  emit({ type: 'bye' });
  process.exit(0);
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => { if (line.trim()) handle(JSON.parse(line)); });
rl.on('close', shutdown);
process.on('SIGTERM', shutdown);
