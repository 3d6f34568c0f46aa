// The technician console: pages, routing and refresh. Talks only to the appliance's own API
// (api.js); formatting and plans are in views.js.
import { Api, ApiError, explain } from './api.js';
import {
  PROTOCOLS, cameraUrlProblem, cpuPercent, currentRecording, diskSummary, encoderSettings, eventNameProblem, firstVariant,
  formatBitrate, formatBytes, formatSeconds, health, isoDurationSeconds, outputNames, planGoLive, playbackUrls, playlistSeconds,
  stateClass, suggestEventName, syncLine, syncSummary, trackRows, videoSummary, captureLabel,
} from './views.js';

const api = new Api({ storage: window.sessionStorage });
const REFRESH_MS = 3000;
const main = document.getElementById('main');
const nav = document.getElementById('nav');

// ---------------------------------------------------------------------------------------- DOM
/** Builds an element: h('div', {class: 'x', onclick}, child, 'text', ...). Text is never HTML. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces an element's children; arrays are flattened, null/undefined/false skipped. */
function put(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== undefined && c !== null && c !== false));
}

function errorBox(err, context) {
  return h('p', { class: 'error', role: 'alert', 'data-testid': 'error' }, explain(err, context));
}

function copyField(f) {
  const input = h('input', { readonly: true, value: f.value, id: f.id, 'data-testid': f.id, 'aria-label': f.label });
  const btn = h('button', {
    type: 'button', class: 'copy', 'data-testid': `copy-${f.id}`,
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(f.value);
      } catch {
        input.select();
        document.execCommand('copy'); // plain-HTTP pages have no Clipboard API
      }
      btn.textContent = 'Copied';
      setTimeout(() => { btn.textContent = 'Copy'; }, 1500);
    },
  }, 'Copy');
  return h('div', { class: 'field' }, h('label', { for: f.id }, f.label), h('div', { class: 'copyrow' }, input, btn));
}

function badge(text, level) { return h('span', { class: `badge ${level}` }, text); }

// ---------------------------------------------------------------------------------------- routing
let timers = [];
let cleanups = [];
function every(ms, fn) {
  fn();
  timers.push(setInterval(fn, ms));
}
function onLeave(fn) { cleanups.push(fn); }
function leave() {
  timers.forEach(clearInterval);
  timers = [];
  cleanups.forEach((f) => { try { f(); } catch { /* page already gone */ } });
  cleanups = [];
}

const routes = [
  [/^#\/login$/, loginPage],
  [/^#\/?$/, dashboardPage],
  [/^#\/golive$/, goLivePage],
  [/^#\/event\/([^/]+)$/, eventPage],
  [/^#\/cameras$/, camerasPage],
  [/^#\/archive(?:\/([^/]+))?$/, archivePage],
  [/^#\/settings$/, settingsPage],
];

let renderSeq = 0;
async function route() {
  leave();
  const hash = location.hash || '#/';
  if (!api.signedIn && hash !== '#/login') {
    location.hash = '#/login';
    return;
  }
  nav.hidden = !api.signedIn;
  for (const a of nav.querySelectorAll('a')) {
    const target = a.getAttribute('href');
    a.classList.toggle('active', target === '#/' ? hash === '#/' || hash === '#' : hash.startsWith(target));
  }
  const seq = ++renderSeq;
  for (const [re, page] of routes) {
    const m = re.exec(hash);
    if (m) {
      put(main, h('p', { class: 'muted' }, 'Loading…'));
      try {
        const el = await page(...m.slice(1).map((x) => (x === undefined ? x : decodeURIComponent(x))));
        if (seq === renderSeq) {
          put(main, el);
          // For bench/console_bench.py: when the first page is on screen and usable.
          if (!performance.getEntriesByName('console-ready').length) performance.mark('console-ready');
        }
      } catch (e) {
        if (seq === renderSeq) put(main, h('section', {}, errorBox(e)));
      }
      document.body.dataset.page = page.name;
      return;
    }
  }
  location.hash = '#/';
}

api.onUnauthorized = () => {
  sessionNotice = 'Your session has ended (it expired or its key was revoked). Sign in again.';
  location.hash = '#/login';
};
let sessionNotice = '';

document.getElementById('signout').addEventListener('click', () => {
  api.signOut();
  location.hash = '#/login';
});
window.addEventListener('hashchange', route);

// ---------------------------------------------------------------------------------------- login
async function loginPage() {
  if (api.signedIn) {
    location.hash = '#/';
    return h('p', {}, 'Signed in.');
  }
  const msg = h('div', { 'aria-live': 'polite' }, sessionNotice ? h('p', { class: 'notice' }, sessionNotice) : null);
  sessionNotice = '';
  const key = h('input', { id: 'apikey', name: 'apikey', type: 'password', autocomplete: 'current-password',
    required: true, placeholder: 'rmse_…', 'data-testid': 'apikey' });
  const btn = h('button', { type: 'submit', 'data-testid': 'signin' }, 'Sign in');
  const form = h('form', {
    class: 'card narrow', onsubmit: async (ev) => {
      ev.preventDefault();
      btn.disabled = true;
      put(msg, h('p', { class: 'muted' }, 'Checking the key…'));
      try {
        await api.login(key.value);
        location.hash = '#/';
      } catch (e) {
        put(msg, errorBox(e, 'login'));
        key.select();
      } finally {
        btn.disabled = false;
      }
    },
  },
  h('h1', {}, 'Sign in'),
  h('p', { class: 'muted' }, 'Enter the appliance\'s API key. It was printed when the appliance first started; more keys: ',
    h('code', {}, 'rms-edge keys create'), '.'),
  h('label', { for: 'apikey' }, 'API key'), key, btn, msg);
  setTimeout(() => key.focus(), 0);
  return form;
}

// ---------------------------------------------------------------------------------------- dashboard
async function dashboardPage() {
  const sysCard = h('div', { class: 'card', 'data-testid': 'system-card' }, h('h2', {}, 'Appliance'), h('p', { class: 'muted' }, 'Loading…'));
  const syncCard = h('div', { class: 'card', 'data-testid': 'sync-card' }, h('h2', {}, 'Archive sync'), h('p', { class: 'muted' }, 'Loading…'));
  const events = h('div', { class: 'card wide', 'data-testid': 'events-card' }, h('h2', {}, 'Live events'), h('p', { class: 'muted' }, 'Loading…'));
  let prev = null;
  let prevAt = 0;
  every(REFRESH_MS, async () => {
    try {
      const [sys, sync] = await Promise.all([api.system(), api.sync()]);
      const now = performance.now();
      const cpu = prev ? cpuPercent(prev, sys, (now - prevAt) / 1000) : null;
      prev = sys;
      prevAt = now;
      const disk = diskSummary(sys.disk);
      put(sysCard, h('h2', {}, 'Appliance'), h('dl', { class: 'facts' },
        h('dt', {}, 'Disk'), h('dd', { 'data-testid': 'disk' }, badge(disk.usedPct === null ? '?' : `${disk.usedPct} % used`, disk.level), ' ', disk.text),
        h('dt', {}, 'CPU'), h('dd', { 'data-testid': 'cpu' },
          cpu === null ? 'measuring…' : `appliance ${cpu.toFixed(1)} % of one core`,
          sys.cpu.loadAverage && sys.cpu.loadAverage.length ? `, load ${sys.cpu.loadAverage[0].toFixed(2)} on ${sys.cpu.cores} cores` : ''),
        h('dt', {}, 'Memory'), h('dd', {}, `${formatBytes(sys.memory.availableBytes)} free of ${formatBytes(sys.memory.totalBytes)}`),
        h('dt', {}, 'Encoder'), h('dd', { 'data-testid': 'hw-encoder' },
          sys.hardwareEncoders.length ? sys.hardwareEncoders.map((e) => e.device).join(', ') : 'None (software passthrough)'),
        h('dt', {}, 'Running'), h('dd', {}, `${sys.runningLiveEvents} live event(s)`),
        h('dt', {}, 'Version'), h('dd', {}, `rms-edge ${sys.version}, up ${formatSeconds(sys.uptimeSeconds)}`)));
      const s = syncSummary(sync);
      put(syncCard, h('h2', {}, 'Archive sync'),
        h('p', { 'data-testid': 'sync-summary' }, s.configured ? s.text : 'Sync not configured: recordings stay on this appliance.'));
    } catch (e) {
      put(sysCard, h('h2', {}, 'Appliance'), errorBox(e));
    }
  });
  every(REFRESH_MS, async () => {
    try {
      const list = await api.listEvents();
      const statuses = await Promise.all(list.map((ev) => (ev.properties.resourceState === 'Running'
        ? api.eventStatus(ev.name).catch(() => null) : Promise.resolve(null))));
      const rows = list.map((ev, i) => {
        const st = statuses[i];
        const hl = health(st || { state: ev.properties.resourceState });
        const tr = trackRows(st);
        const video = tr.find((t) => /video/i.test(t.kind)) || tr[0];
        return h('tr', { dataset: { event: ev.name } },
          h('td', {}, h('a', { href: `#/event/${encodeURIComponent(ev.name)}` }, ev.name)),
          h('td', {}, badge(ev.properties.resourceState, stateClass(ev.properties.resourceState))),
          h('td', {}, ev.properties.input.streamingProtocol),
          h('td', { 'data-testid': 'event-health' }, badge(hl.headline, hl.level)),
          h('td', { class: 'num' }, video ? formatBitrate(video.bitrate) : '—'),
          h('td', { 'data-testid': 'event-video' }, videoLine(st)));
      });
      put(events, h('div', { class: 'cardhead' }, h('h2', {}, 'Live events'),
        h('a', { class: 'button', href: '#/golive', 'data-testid': 'golive-link' }, 'Go live')),
      list.length
        ? h('div', { class: 'scroll' }, h('table', { 'data-testid': 'events-table' },
          h('thead', {}, h('tr', {}, ['Event', 'State', 'Input', 'Ingest health', 'Bitrate', 'Frame rate / keyframes'].map((t) => h('th', {}, t)))),
          h('tbody', {}, rows)))
        : h('p', { class: 'muted' }, 'No live events yet. Press "Go live" to create one.'));
      if (!performance.getEntriesByName('dashboard-ready').length) performance.mark('dashboard-ready');
    } catch (e) {
      put(events, h('h2', {}, 'Live events'), errorBox(e));
    }
  });
  return h('div', { class: 'grid' }, events, sysCard, syncCard);
}

/** The dashboard's short form of the video input: "30 fps, keyframe 2.0 s". */
function videoLine(st) {
  const v = videoSummary(st);
  if (!v) return '—';
  const parts = [v.fps === null ? '… fps' : `${Number.isInteger(v.fps) ? v.fps : v.fps.toFixed(2)} fps`,
    v.gop === null ? 'keyframe …' : `keyframe ${v.gop.toFixed(1)} s`];
  return v.warning ? h('span', { class: 'warntext', title: v.warning }, parts.join(', '), ' ⚠') : parts.join(', ');
}

// ---------------------------------------------------------------------------------------- go live
async function goLivePage() {
  let sys = null;
  try { sys = await api.system(); } catch { /* the form still works */ }
  const rtspUp = sys ? (sys.ingest.find((i) => i.protocol === 'RTSP') || {}).available : false;
  const name = h('input', { id: 'ev-name', 'data-testid': 'ev-name', required: true, maxlength: 32,
    value: suggestEventName(`event-${new Date().toISOString().slice(5, 16).replace(/[-T:]/g, '')}`) });
  const protocol = h('select', { id: 'ev-protocol', 'data-testid': 'ev-protocol' },
    PROTOCOLS.map((p) => h('option', { value: p.value }, p.label)));
  const protoNote = h('p', { class: 'muted small' });
  const updateProto = () => {
    protoNote.textContent = protocol.value === 'RTSPPush' && !rtspUp
      ? 'RTSP ingest is not running on this appliance yet: encoders will not be able to connect. Use RTMP or SRT.'
      : '';
  };
  protocol.addEventListener('change', updateProto);
  updateProto();
  const encoding = h('select', { id: 'ev-encoding', 'data-testid': 'ev-encoding' },
    h('option', { value: 'PassthroughStandard' }, 'Passthrough (the encoder\'s own quality)'),
    h('option', { value: 'PassthroughBasic' }, 'Passthrough basic (one output)'),
    h('option', { value: 'Standard' }, 'ABR 720p ladder (4 renditions, transcoded on this box)'),
    h('option', { value: 'Premium1080p' }, 'ABR 1080p ladder (5 renditions, transcoded on this box)'));
  const lowLatency = h('input', { type: 'checkbox', id: 'ev-ll', 'data-testid': 'ev-ll' });
  const archive = h('select', { id: 'ev-archive', 'data-testid': 'ev-archive' },
    [['PT30M', '30 minutes'], ['PT1H', '1 hour'], ['PT4H', '4 hours'], ['PT8H', '8 hours'], ['PT25H', '25 hours']]
      .map(([v, l]) => h('option', { value: v, selected: v === 'PT1H' }, l)));
  const startNow = h('input', { type: 'checkbox', id: 'ev-start', checked: true, 'data-testid': 'ev-start' });
  const steps = h('ol', { class: 'steps', 'data-testid': 'golive-steps' });
  const msg = h('div', { 'aria-live': 'polite' });
  const btn = h('button', { type: 'submit', 'data-testid': 'golive-create' }, 'Create event');
  const form = h('form', {
    class: 'card narrow', onsubmit: async (ev) => {
      ev.preventDefault();
      const problem = eventNameProblem(name.value.trim());
      if (problem) {
        put(msg, h('p', { class: 'error', role: 'alert', 'data-testid': 'error' }, problem));
        return;
      }
      btn.disabled = true;
      put(msg);
      put(steps);
      const plan = planGoLive({ name: name.value.trim(), protocol: protocol.value, encoding: encoding.value,
        lowLatency: lowLatency.checked, archiveWindow: archive.value });
      let last = null;
      const step = (label) => {
        if (last) last.classList.add('done');
        last = h('li', {}, label);
        steps.append(last);
      };
      try {
        await api.goLive(plan, { step, start: startNow.checked });
        if (last) last.classList.add('done');
        location.hash = `#/event/${encodeURIComponent(plan.event)}`;
      } catch (e) {
        if (last) last.classList.add('failed');
        put(msg, errorBox(e));
        btn.disabled = false;
      }
    },
  },
  h('h1', {}, 'Go live'),
  h('p', { class: 'muted' }, 'Creates the live event with its recording (asset, live output) and playback URL (streaming locator).'),
  h('label', { for: 'ev-name' }, 'Event name'), name,
  h('p', { class: 'muted small' }, 'Letters, digits, "-" and "_"; at most 32 characters.'),
  h('label', { for: 'ev-protocol' }, 'Encoder connects with'), protocol, protoNote,
  h('label', { for: 'ev-encoding' }, 'Encoding'), encoding,
  h('label', { for: 'ev-archive' }, 'Rewind / archive window'), archive,
  h('label', { class: 'check' }, lowLatency, ' Low latency'),
  h('label', { class: 'check' }, startNow, ' Start the event now (the encoder can connect at once)'),
  btn, steps, msg);
  return form;
}

// ---------------------------------------------------------------------------------------- event
function hlsScriptUrl() { return new URL('./vendor/hls.min.js', import.meta.url).href; }
let hlsLoading = null;
function loadHls() {
  if (window.Hls) return Promise.resolve(window.Hls);
  if (!hlsLoading) {
    hlsLoading = new Promise((resolve, reject) => {
      const s = h('script', { src: hlsScriptUrl() });
      s.onload = () => resolve(window.Hls);
      s.onerror = () => { hlsLoading = null; reject(new Error('The bundled player could not be loaded. Reload the page.')); };
      document.head.append(s);
    });
  }
  return hlsLoading;
}

/** A player for an HLS URL (same origin): hls.js where MSE exists, native HLS otherwise. */
async function attachPlayer(video, url, onFatal) {
  const Hls = await loadHls();
  if (Hls && Hls.isSupported()) {
    const hls = new Hls({ lowLatencyMode: false, liveSyncDurationCount: 3 });
    hls.on(Hls.Events.ERROR, (_e, data) => { if (data.fatal) { hls.destroy(); onFatal && onFatal(data); } });
    hls.loadSource(url);
    hls.attachMedia(video);
    video.play().catch(() => { /* autoplay may wait for a click */ });
    return () => hls.destroy();
  }
  if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.src = url;
    video.play().catch(() => {});
    return () => { video.removeAttribute('src'); video.load(); };
  }
  throw new Error('This browser cannot play HLS.');
}

async function endpointHost() {
  try {
    const eps = await api.listEndpoints();
    const d = eps.find((e) => e.name === 'default') || eps[0];
    if (d && d.properties.hostName) return d.properties.hostName;
  } catch { /* fall back below */ }
  return location.host;
}

async function eventPage(name) {
  let ev = await api.getEvent(name);
  const host = await endpointHost();
  const title = h('h1', {}, name);
  const stateBadge = h('span', { 'data-testid': 'event-state' });
  const actions = h('div', { class: 'actions' });
  const progress = h('ol', { class: 'steps', 'data-testid': 'event-steps' });
  const msg = h('div', { 'aria-live': 'polite' });
  const encoders = h('div', { class: 'card', 'data-testid': 'encoders' });
  const healthBox = h('div', { class: 'card', 'data-testid': 'health' }, h('h2', {}, 'Ingest health'));
  const video = h('video', { id: 'preview', 'data-testid': 'preview', muted: true, playsinline: true, controls: true, autoplay: true });
  video.muted = true;
  const previewNote = h('p', { class: 'muted small', 'data-testid': 'preview-note' }, 'The preview starts when the encoder\'s stream is playable.');
  const playback = h('div', { 'data-testid': 'playback' });
  const previewCard = h('div', { class: 'card' }, h('h2', {}, 'Preview'), video, previewNote, h('h3', {}, 'Playback URLs'), playback);
  let busy = false;
  let detach = null;
  let playingUrl = null;
  onLeave(() => { if (detach) detach(); });

  const renderEncoders = () => {
    const list = encoderSettings(ev);
    put(encoders, h('h2', {}, 'Encoder settings'),
      h('p', { class: 'muted small' }, 'Copy these into the encoder. Keep the stream key private: anyone with it can publish.'),
      list.map((e) => h('section', { class: 'encoder' }, h('h3', {}, e.encoder), e.fields.map(copyField))));
  };

  const stopPreview = (why) => {
    if (detach) detach();
    detach = null;
    playingUrl = null;
    if (why) previewNote.textContent = why;
  };

  const refreshPlayback = async () => {
    const outs = await api.listOutputs(name);
    const rec = currentRecording(outs);
    if (!rec) {
      put(playback, h('p', { class: 'muted' }, 'No recording is attached: one is created when the event starts.'));
      return null;
    }
    const paths = await api.assetPlayback(rec.asset);
    put(playback, playbackUrls(paths, host).map(copyField),
      h('p', { class: 'muted small' }, 'Recording into asset ', h('a', { href: `#/archive/${encodeURIComponent(rec.asset)}` }, rec.asset), '.'));
    return paths;
  };

  const run = async (label, fn) => {
    if (busy) return;
    busy = true;
    renderActions();
    put(progress);
    put(msg);
    let last = null;
    const step = (l) => {
      if (last) last.classList.add('done');
      last = h('li', {}, l);
      progress.append(last);
    };
    try {
      await fn(step);
      if (last) last.classList.add('done');
    } catch (e) {
      if (last) last.classList.add('failed');
      put(msg, errorBox(e));
    } finally {
      busy = false;
      ev = await api.getEvent(name).catch(() => ev);
      render();
      refresh();
    }
  };

  const start = () => run('start', async (step) => {
    const outs = await api.listOutputs(name);
    if (!outs.length) {
      const names = outputNames(name);
      await api.prepareOutput({ event: name, ...names, archiveWindow: 'PT1H' }, { step });
    }
    step('Starting the live event');
    await api.startEvent(name, { onProgress: (s) => { if (s === 'InProgress') put(stateBadge, badge('Starting', 'busy')); } });
  });
  const stop = () => run('stop', async (step) => {
    step('Stopping the live event (the recording is finished and kept)');
    stopPreview('The event is stopped. Its recording is in the archive.');
    await api.stopEvent(name);
  });
  const del = () => {
    if (!confirm(`Delete live event ${name}? Its recordings stay in the archive.`)) return;
    run('delete', async (step) => {
      step('Deleting the live event');
      await api.deleteEvent(name);
      location.hash = '#/';
    });
  };

  function renderActions() {
    const s = ev.properties.resourceState;
    const running = s === 'Running';
    put(actions, 
      running
        ? h('button', { class: 'danger', 'data-testid': 'stop', disabled: busy, onclick: stop }, 'Stop event')
        : h('button', { 'data-testid': 'start', disabled: busy || s !== 'Stopped', onclick: start }, 'Start event'),
      !running ? h('button', { class: 'secondary', 'data-testid': 'delete-event', disabled: busy || s !== 'Stopped', onclick: del }, 'Delete') : null);
  }

  function render() {
    const s = ev.properties.resourceState;
    put(stateBadge, badge(s, stateClass(s)));
    renderActions();
    renderEncoders();
  }

  const healthBody = h('div');
  healthBox.append(healthBody);
  async function refresh() {
    try {
      ev = busy ? ev : await api.getEvent(name);
      if (!busy) render();
      const running = ev.properties.resourceState === 'Running';
      const st = running ? await api.eventStatus(name) : null;
      const hl = health(st || { state: ev.properties.resourceState, healthDescriptions: [] });
      const tr = trackRows(st);
      const gopWanted = isoDurationSeconds(ev.properties.input.keyFrameIntervalDuration || 'PT2S') || 2;
      const vs = videoSummary(st, gopWanted);
      put(healthBody, 
        h('p', {}, badge(hl.headline, hl.level), ' ', h('span', { 'data-testid': 'health-level', dataset: { level: hl.level } }, hl.level)),
        hl.descriptions.length ? h('ul', { class: 'small' }, hl.descriptions.map((d) => h('li', {}, d))) : null,
        tr.length ? h('div', { class: 'scroll' }, h('table', { 'data-testid': 'tracks' },
          h('thead', {}, h('tr', {}, ['Track', 'Incoming', 'Expected', 'Drift'].map((t) => h('th', {}, t)))),
          h('tbody', {}, tr.map((t) => h('tr', { dataset: { track: t.track } }, h('td', {}, t.track),
            h('td', { class: 'num' }, formatBitrate(t.bitrate)), h('td', { class: 'num' }, formatBitrate(t.expectedBitrate)),
            h('td', { class: 'num' }, t.drift ?? '—')))))) : null,
        vs ? h('p', { 'data-testid': 'video-input' }, 'Video: ', vs.text) : null,
        vs && vs.warning ? h('p', { class: 'warntext', 'data-testid': 'gop-warning' }, vs.warning) : null,
        running ? h('p', { class: 'muted small' }, 'Keyframe interval expected by the event: ',
          formatSeconds(gopWanted), ' (set the encoder\'s keyframe interval / GOP to match).') : null,
        st && st.ingestion && st.ingestion.begin ? h('p', { class: 'muted small' }, `Ingest since ${new Date(st.ingestion.begin).toLocaleTimeString()}`) : null);
      const paths = await refreshPlayback();
      if (running && paths && paths.hls && !detach) {
        const url = paths.hls;
        const probe = await fetch(url, { cache: 'no-store' }).catch(() => null);
        if (probe && probe.ok && !detach) {
          previewNote.textContent = 'Live preview (muted).';
          playingUrl = url;
          detach = await attachPlayer(video, url, () => stopPreview('The preview stopped; retrying…'));
        }
      } else if (!running && detach) {
        stopPreview('The event is stopped.');
      }
    } catch (e) {
      put(healthBody, errorBox(e));
    }
  }

  render();
  every(REFRESH_MS, refresh);
  return h('div', { class: 'grid' },
    h('div', { class: 'card wide' }, h('div', { class: 'cardhead' }, title, stateBadge),
      h('p', { class: 'muted' }, `Input ${ev.properties.input.streamingProtocol}, ${ev.properties.encoding.encodingType}`,
        (ev.properties.streamOptions || []).includes('LowLatency') ? ', low latency' : ''),
      actions, progress, msg),
    encoders, healthBox, previewCard);
}

// ---------------------------------------------------------------------------------------- cameras
const THUMB_MS = 10000;

/**
 * A thumbnail that refreshes while the page is open. `load()` answers an object URL or null (no
 * picture yet); each replaced URL is revoked.
 */
function thumbnail(load, { testid, alt, empty }) {
  const img = h('img', { class: 'thumb', alt, 'data-testid': testid, hidden: true });
  const note = h('div', { class: 'thumb placeholder muted small' }, 'Loading picture…');
  let url = null;
  const set = (u) => {
    if (url) URL.revokeObjectURL(url);
    url = u;
    if (u) img.src = u;
    img.hidden = !u;
    note.hidden = !!u;
  };
  onLeave(() => set(null));
  every(THUMB_MS, async () => {
    try {
      const u = await load();
      if (u) set(u);
      else if (!url) note.textContent = empty;
    } catch (e) {
      if (!url) note.textContent = explain(e);
    }
  });
  return h('div', { class: 'thumbbox' }, img, note);
}

async function camerasPage() {
  const [devices, events] = await Promise.all([
    api.captureDevices().catch((e) => ({ error: e })),
    api.listEvents().catch(() => []),
  ]);
  const byDevice = new Map(events.filter((e) => e.properties.input.streamingProtocol === 'LocalCapture')
    .map((e) => [e.properties.input.captureDevice, e]));
  const cams = events.filter((e) => e.properties.input.streamingProtocol === 'RTSPPull');
  let deviceBody;
  if (devices.error) deviceBody = errorBox(devices.error);
  else if (!devices.length) deviceBody = h('p', { 'data-testid': 'no-capture' }, 'No capture devices are connected to this appliance.');
  else deviceBody = h('div', { class: 'tiles' }, devices.map((d) => captureTile(d, byDevice.get(d.id.toString()))));
  return h('div', { class: 'grid' },
    h('div', { class: 'card wide', 'data-testid': 'capture-devices' }, h('h1', {}, 'Cameras'),
      h('h2', {}, 'Capture devices (HDMI / SDI / USB)'), deviceBody),
    h('div', { class: 'card wide', 'data-testid': 'rtsp-cameras' }, h('h2', {}, 'IP cameras (RTSP)'),
      cams.length
        ? h('div', { class: 'tiles' }, cams.map(rtspTile))
        : h('p', { class: 'muted' }, 'No IP cameras yet. Add one below.')),
    addCameraForm());
}

/** A capture device: its picture, and one click to go live with it (or its event, if it has one). */
function captureTile(d, ev) {
  const label = captureLabel(d);
  const msg = h('div', { 'aria-live': 'polite' });
  const steps = h('ol', { class: 'steps' });
  const encoding = h('select', { 'data-testid': 'capture-encoding', 'aria-label': `Encoding for ${label}` },
    h('option', { value: 'PassthroughStandard' }, 'One rendition at the camera\'s size'),
    h('option', { value: 'Standard' }, 'ABR 720p ladder'),
    h('option', { value: 'Premium1080p' }, 'ABR 1080p ladder'));
  const goLive = async (btn) => {
    btn.disabled = true;
    put(msg);
    const name = suggestEventName(`${label}-${new Date().toISOString().slice(5, 16).replace(/[-T:]/g, '')}`);
    const plan = planGoLive({ name, protocol: 'LocalCapture', captureDevice: d.id, encoding: encoding.value });
    try {
      await api.goLive(plan, { step: (l) => steps.append(h('li', { class: 'done' }, l)), start: true });
      location.hash = `#/event/${encodeURIComponent(plan.event)}`;
    } catch (e) {
      put(msg, errorBox(e));
      btn.disabled = false;
    }
  };
  const running = ev && ev.properties.resourceState === 'Running';
  return h('section', { class: 'tile', dataset: { device: d.id } },
    thumbnail(() => api.deviceThumbnail(d.id), { testid: 'device-thumb', alt: `Picture from ${label}`,
      empty: 'No picture.' }),
    h('h3', {}, label),
    h('p', { class: 'muted small' }, h('code', {}, d.id), ` (${d.path})`),
    ev
      ? h('p', {}, 'Input of ', h('a', { href: `#/event/${encodeURIComponent(ev.name)}`, 'data-testid': 'device-event' }, ev.name),
        ' ', badge(ev.properties.resourceState, stateClass(ev.properties.resourceState)))
      : null,
    running ? null : h('div', { class: 'actions' }, encoding,
      h('button', { type: 'button', 'data-testid': 'capture-golive', onclick: (e) => goLive(e.currentTarget) }, 'Go live with this camera')),
    steps, msg);
}

/** An RTSP camera (an RTSPPull event): its picture while it runs (the last one after), start/stop on its page. */
function rtspTile(e) {
  const s = e.properties.resourceState;
  return h('section', { class: 'tile', dataset: { camera: e.name } },
    thumbnail(() => api.eventThumbnail(e.name), { testid: 'camera-thumb', alt: `Picture from ${e.name}`,
      empty: s === 'Running' ? 'Waiting for the camera\'s first keyframe…' : 'Start the camera\'s event to see its picture.' }),
    h('h3', {}, h('a', { href: `#/event/${encodeURIComponent(e.name)}` }, e.name), ' ', badge(s, stateClass(s))),
    h('p', { class: 'muted small' }, (e.properties.input.rtspPullUrl || '').replace(/\/\/[^@/]*@/, '//')),
    s === 'Stopped' ? h('div', { class: 'actions' }, h('a', { class: 'button', href: `#/event/${encodeURIComponent(e.name)}`,
      'data-testid': 'camera-open' }, 'Open to start')) : null);
}

/** "Add an IP camera": an RTSPPull live event (with its recording and locator), not started. */
function addCameraForm() {
  const name = h('input', { id: 'cam-name', 'data-testid': 'cam-name', maxlength: 32, value: 'camera1' });
  const url = h('input', { id: 'cam-url', 'data-testid': 'cam-url', placeholder: 'rtsp://user:password@192.168.1.64/stream1' });
  const steps = h('ol', { class: 'steps' });
  const msg = h('div', { 'aria-live': 'polite' });
  return h('form', { class: 'card', onsubmit: async (ev) => {
    ev.preventDefault();
    const problem = eventNameProblem(name.value.trim()) || cameraUrlProblem(url.value.trim());
    if (problem) {
      put(msg, h('p', { class: 'error', role: 'alert', 'data-testid': 'error' }, problem));
      return;
    }
    put(msg);
    put(steps);
    const plan = planGoLive({ name: name.value.trim(), protocol: 'RTSPPull', rtspPullUrl: url.value.trim() });
    try {
      await api.goLive(plan, { step: (l) => steps.append(h('li', { class: 'done' }, l)) });
      location.hash = `#/event/${encodeURIComponent(plan.event)}`;
    } catch (e) {
      put(msg, errorBox(e));
    }
  } },
  h('h2', {}, 'Add an IP camera (RTSP pull)'),
  h('p', { class: 'muted small' }, 'The appliance connects to the camera when the event starts. The password is kept by the appliance and never shown again.'),
  h('label', { for: 'cam-name' }, 'Event name'), name,
  h('label', { for: 'cam-url' }, 'Camera URL'), url,
  h('div', { class: 'actions' }, h('button', { type: 'submit', 'data-testid': 'cam-add' }, 'Add camera')), steps, msg);
}

// ---------------------------------------------------------------------------------------- archive
async function recordingSeconds(hlsPath) {
  const mv = await fetch(hlsPath, { cache: 'no-store' });
  if (!mv.ok) return null;
  const text = await mv.text();
  const v = firstVariant(text);
  if (!v) return playlistSeconds(text) || null;
  const media = await fetch(new URL(v, new URL(hlsPath, location.href)).href, { cache: 'no-store' });
  return media.ok ? playlistSeconds(await media.text()) : null;
}

async function archivePage(selected) {
  const [assets, sync, storage] = await Promise.all([api.listAssets(), api.sync().catch(() => null),
    api.call('GET', '/edge/v1/storage').catch(() => null)]);
  const sizes = new Map(((storage && storage.assets) || []).map((a) => [a.assetId, a.bytes]));
  const configured = syncSummary(sync).configured;
  const video = h('video', { id: 'archive-player', 'data-testid': 'archive-player', controls: true, muted: true, playsinline: true });
  video.muted = true;
  const playerNote = h('p', { class: 'muted small', 'data-testid': 'archive-player-note' }, 'Choose a recording to play it.');
  const playerCard = h('div', { class: 'card wide' }, h('h2', {}, 'Player'), video, playerNote);
  let detach = null;
  onLeave(() => { if (detach) detach(); });
  const msg = h('div', { 'aria-live': 'polite' });

  const play = async (name) => {
    try {
      if (detach) detach();
      detach = null;
      const p = await api.assetPlayback(name);
      if (!p || !p.hls) {
        playerNote.textContent = `${name} has no recording to play yet.`;
        return;
      }
      playerNote.textContent = `Playing ${name}.`;
      detach = await attachPlayer(video, p.hls, () => { playerNote.textContent = `${name} could not be played.`; });
      playerCard.scrollIntoView({ behavior: 'smooth', block: 'nearest' });
    } catch (e) {
      put(msg, errorBox(e));
    }
  };

  const sorted = [...assets].sort((a, b) => String(b.properties.created).localeCompare(String(a.properties.created)));
  const rows = sorted.map((a) => {
    const dur = h('td', { class: 'num', 'data-testid': 'asset-duration' }, '…');
    const es = a.properties.edgeSync;
    const size = sizes.get(a.properties.assetId) ?? (es && es.bytesTotal);
    const row = h('tr', { dataset: { asset: a.name } },
      h('td', {}, a.name, a.properties.description ? h('div', { class: 'muted small' }, a.properties.description) : null),
      h('td', {}, new Date(a.properties.created).toLocaleString()),
      dur,
      h('td', { class: 'num' }, size === undefined ? '—' : formatBytes(size)),
      h('td', { 'data-testid': 'asset-sync' }, syncLine(es, configured),
        es && es.url ? h('div', { class: 'small' }, h('a', { href: es.url, target: '_blank', rel: 'noopener' }, 'cloud copy')) : null),
      h('td', { class: 'rowactions' },
        h('button', { 'data-testid': 'play-asset', onclick: () => play(a.name) }, 'Play'),
        configured ? h('button', { class: 'secondary', 'data-testid': 'retry-sync', onclick: async () => {
          try {
            await api.retrySync(a.name);
            put(msg, h('p', { class: 'notice' }, `Sync of ${a.name} queued again.`));
          } catch (e) { put(msg, errorBox(e)); }
        } }, 'Retry sync') : null,
        h('button', { class: 'danger', 'data-testid': 'delete-asset', onclick: async () => {
          if (!confirm(`Delete ${a.name} and its recording from this appliance?`)) return;
          try {
            await api.deleteAsset(a.name);
            row.remove();
            put(msg, h('p', { class: 'notice' }, `${a.name} deleted.`));
          } catch (e) { put(msg, errorBox(e)); }
        } }, 'Delete')));
    api.assetPlayback(a.name)
      .then((p) => (p && p.hls ? recordingSeconds(p.hls) : null))
      .then((s) => { dur.textContent = s ? formatSeconds(s) : '—'; })
      .catch(() => { dur.textContent = '—'; });
    return row;
  });
  if (selected) setTimeout(() => play(selected), 0);
  // Sync states move on their own (upload progress): refresh them in place.
  if (configured) {
    timers.push(setInterval(async () => {
      try {
        const fresh = await api.listAssets();
        for (const a of fresh) {
          const cell = main.querySelector(`tr[data-asset="${CSS.escape(a.name)}"] [data-testid=asset-sync]`);
          if (cell) put(cell, syncLine(a.properties.edgeSync, true),
            a.properties.edgeSync && a.properties.edgeSync.url ? h('div', { class: 'small' }, h('a', { href: a.properties.edgeSync.url, target: '_blank', rel: 'noopener' }, 'cloud copy')) : null);
        }
      } catch { /* the next refresh tries again */ }
    }, REFRESH_MS));
  }
  return h('div', { class: 'grid' },
    h('div', { class: 'card wide' }, h('h1', {}, 'Archive'),
      h('p', { class: 'muted', 'data-testid': 'archive-sync' }, configured ? syncSummary(sync).text : 'Sync not configured: recordings stay on this appliance.'),
      msg,
      sorted.length
        ? h('div', { class: 'scroll' }, h('table', { 'data-testid': 'assets-table' },
          h('thead', {}, h('tr', {}, ['Recording', 'Created', 'Duration', 'Size', 'Sync', ''].map((t) => h('th', {}, t)))),
          h('tbody', {}, rows)))
        : h('p', { class: 'muted' }, 'No recordings yet.')),
    playerCard);
}

// ---------------------------------------------------------------------------------------- settings
async function settingsPage() {
  const [sys, sync, host] = await Promise.all([api.system(), api.sync().catch(() => null), endpointHost()]);
  const keysBox = h('div', { 'data-testid': 'keys' });
  const newKeyBox = h('div', { 'aria-live': 'polite' });
  const renderKeys = async () => {
    try {
      const keys = await api.keys();
      put(keysBox, h('div', { class: 'scroll' }, h('table', {},
        h('thead', {}, h('tr', {}, ['Name', 'Id', 'Created', 'Status', ''].map((t) => h('th', {}, t)))),
        h('tbody', {}, keys.map((k) => h('tr', { dataset: { key: k.id } }, h('td', {}, k.name), h('td', {}, h('code', {}, k.id)),
          h('td', {}, new Date(k.created).toLocaleString()), h('td', {}, k.revoked ? `revoked ${new Date(k.revoked).toLocaleString()}` : 'valid'),
          h('td', {}, k.revoked ? null : h('button', { class: 'danger', 'data-testid': 'revoke-key', onclick: async () => {
            if (!confirm(`Revoke key ${k.name} (${k.id})? Everyone using it is signed out at once.`)) return;
            try { await api.revokeKey(k.id); await renderKeys(); } catch (e) { put(newKeyBox, errorBox(e)); }
          } }, 'Revoke'))))))));
    } catch (e) { put(keysBox, errorBox(e)); }
  };
  const keyName = h('input', { id: 'key-name', 'data-testid': 'key-name', value: 'laptop', maxlength: 64 });
  const createForm = h('form', { class: 'inline', onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      const k = await api.createKey(keyName.value.trim());
      put(newKeyBox, h('p', { class: 'notice' }, 'New key created. Store it now: it is shown only once.'),
        copyField({ id: 'new-key', label: `Key ${k.name}`, value: k.apiKey }));
      await renderKeys();
    } catch (e) { put(newKeyBox, errorBox(e)); }
  } }, h('label', { for: 'key-name' }, 'New key name'), keyName, h('button', { type: 'submit', 'data-testid': 'create-key' }, 'Create key'));
  await renderKeys();
  // The probe runs in a child process on the appliance (a second or so): filled in when it answers.
  const encoderFact = h('dd', { 'data-testid': 'video-encoder' }, 'Probing…');
  api.encoders().then((e) => put(encoderFact, h('code', {}, e.encoder), e.hardware ? ' (hardware)' : ' (software)',
    e.reason ? h('div', { class: 'muted small' }, e.reason) : null))
    .catch((e) => put(encoderFact, explain(e)));
  const targets = sync && (sync.targets || sync.storageTargets);
  return h('div', { class: 'grid' },
    h('div', { class: 'card' }, h('h1', {}, 'Settings'), h('dl', { class: 'facts' },
      h('dt', {}, 'Public host'), h('dd', { 'data-testid': 'public-host' }, host),
      h('dt', {}, 'Account'), h('dd', {}, `${sys.identity.accountName} (resource group ${sys.identity.resourceGroup})`),
      h('dt', {}, 'Subscription'), h('dd', {}, h('code', {}, sys.identity.subscriptionId)),
      h('dt', {}, 'Version'), h('dd', { 'data-testid': 'version' }, `rms-edge ${sys.version}`),
      h('dt', {}, 'Data disk'), h('dd', {}, `${sys.disk.path}: ${diskSummary(sys.disk).text}`),
      h('dt', {}, 'Hardware encoder'), h('dd', {}, sys.hardwareEncoderNote),
      h('dt', {}, 'Video encoder'), encoderFact,
      h('dt', {}, 'Transcoding'), h('dd', {}, sys.transcoding.note),
      h('dt', {}, 'Capture devices'), h('dd', {}, sys.captureDevices.length ? sys.captureDevices.map((d) => d.path).join(', ') : sys.captureNote)),
    h('p', { class: 'muted small' }, 'The public host, ports and storage are set in the appliance\'s config.toml (or its flags) and need a restart.')),
    h('div', { class: 'card' }, h('h2', {}, 'Ingest listeners'), h('ul', { 'data-testid': 'listeners' },
      sys.ingest.map((i) => h('li', {}, h('code', {}, i.url), i.available ? '' : h('span', { class: 'muted small' }, ' (not running)'))))),
    h('div', { class: 'card' }, h('h2', {}, 'Storage targets'),
      targets && targets.length
        ? h('ul', { 'data-testid': 'storage-targets' }, targets.map((t) => h('li', {}, h('strong', {}, t.name || ''), ` (${t.kind || ''}) `,
          h('code', {}, t.url || ''), t.reachable === false ? h('span', { class: 'error small' }, ` unreachable: ${t.error || ''}`) : null)))
        : h('p', { 'data-testid': 'storage-targets' }, 'Sync not configured: recordings stay on this appliance.')),
    targets && targets.length ? capForm() : null,
    h('div', { class: 'card wide' }, h('h2', {}, 'API keys'), keysBox, createForm, newKeyBox));
}

/** The archive upload's bandwidth cap, changed at run time (the API keeps it across restarts). */
function capForm() {
  const mbps = h('input', { id: 'cap-mbps', 'data-testid': 'cap-mbps', type: 'number', min: 0, step: 'any', inputmode: 'decimal' });
  const win = h('input', { id: 'cap-window', 'data-testid': 'cap-window', placeholder: '18:00-09:00', maxlength: 11 });
  const note = h('p', { class: 'muted small', 'data-testid': 'cap-now' }, 'Loading…');
  const msg = h('div', { 'aria-live': 'polite' });
  const show = (c) => {
    mbps.value = String(c.uploadMaxMbps);
    win.value = c.uploadUnlimitedWindow || '';
    note.textContent = `${c.uploadMaxMbps > 0 ? `Uploads are capped at ${c.uploadMaxMbps} Mbit/s` : 'Uploads are not capped'}`
      + `${c.uploadUnlimitedWindow ? `, except ${c.uploadUnlimitedWindow} UTC` : ''}`
      + ` (${c.source === 'console' ? 'set here' : 'from config.toml'}).`;
  };
  api.syncSettings().then(show).catch((e) => put(msg, errorBox(e)));
  return h('form', { class: 'card', onsubmit: async (ev) => {
    ev.preventDefault();
    put(msg);
    const value = Number(mbps.value);
    if (mbps.value.trim() === '' || !Number.isFinite(value) || value < 0) {
      put(msg, h('p', { class: 'error', role: 'alert', 'data-testid': 'error' }, 'Enter the cap in Mbit/s: a number, 0 for no cap.'));
      return;
    }
    try {
      show(await api.setSyncSettings({ uploadMaxMbps: value, uploadUnlimitedWindow: win.value.trim() }));
      put(msg, h('p', { class: 'notice', 'data-testid': 'cap-saved' }, 'Saved: it applies to the next upload request.'));
    } catch (e) { put(msg, errorBox(e)); }
  } },
  h('h2', {}, 'Upload bandwidth cap'),
  h('p', { class: 'muted small' }, 'Keeps archive uploads from filling the venue\'s uplink during events. Live ingest and playback on the LAN are not affected.'),
  note,
  h('label', { for: 'cap-mbps' }, 'Cap (Mbit/s, 0 = none)'), mbps,
  h('label', { for: 'cap-window' }, 'Uncapped daily window (UTC, optional)'), win,
  h('div', { class: 'actions' }, h('button', { type: 'submit', 'data-testid': 'cap-save' }, 'Save cap')), msg);
}

route();
