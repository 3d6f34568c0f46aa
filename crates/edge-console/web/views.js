// Pure helpers for the console's pages: formatting, the Go-live plan, encoder settings, health,
// playback URLs. No DOM: unit-tested with `node --test` (crates/edge-console/web-tests/).

/** Escapes text for HTML. */
export function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

export function formatBytes(n) {
  if (n === null || n === undefined || !Number.isFinite(Number(n))) return '—';
  n = Number(n);
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

export function formatBitrate(bps) {
  if (bps === null || bps === undefined || !Number.isFinite(Number(bps))) return '—';
  const n = Number(bps);
  if (n >= 1e6) return `${(n / 1e6).toFixed(n < 1e7 ? 2 : 1)} Mb/s`;
  if (n >= 1e3) return `${Math.round(n / 1e3)} kb/s`;
  return `${n} b/s`;
}

/** Seconds as "1 h 02 min", "3 min 05 s", "42 s". */
export function formatSeconds(s) {
  if (s === null || s === undefined || !Number.isFinite(Number(s))) return '—';
  s = Math.max(0, Math.round(Number(s)));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  if (h) return `${h} h ${String(m).padStart(2, '0')} min`;
  if (m) return `${m} min ${String(sec).padStart(2, '0')} s`;
  return `${sec} s`;
}

/** ISO 8601 duration (PT1H30M, P1D, PT2.5S) to seconds; null if it is not one. */
export function isoDurationSeconds(d) {
  const m = /^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(d || '');
  if (!m || d === 'P' || d.endsWith('T')) return null;
  const [, D, H, M, S] = m.map((x) => (x === undefined ? 0 : Number(x)));
  return D * 86400 + H * 3600 + M * 60 + S;
}

/** Sum of the #EXTINF durations of an HLS media playlist (the length of a recording). */
export function playlistSeconds(text) {
  let total = 0;
  for (const line of String(text).split(/\r?\n/)) {
    const m = /^#EXTINF:([0-9.]+)/.exec(line);
    if (m) total += Number(m[1]);
  }
  return total;
}

/** The first media playlist URI in a multivariant playlist (relative as written), or null. */
export function firstVariant(text) {
  const lines = String(text).split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].startsWith('#EXT-X-STREAM-INF')) {
      for (let j = i + 1; j < lines.length; j++) if (lines[j] && !lines[j].startsWith('#')) return lines[j].trim();
    }
  }
  return null;
}

/** A CSS class for an event's resource state. */
export function stateClass(state) {
  return ({ Running: 'ok', Starting: 'busy', Stopping: 'busy', Allocating: 'busy', Deleting: 'busy',
    StandBy: 'idle', Stopped: 'idle' })[state] || 'idle';
}

/**
 * getStatus → what the dashboard shows: a level ('good' | 'warn' | 'bad' | 'idle'), a headline
 * and the descriptions.
 */
export function health(status) {
  if (!status) return { level: 'idle', headline: 'No status', descriptions: [] };
  const d = status.healthDescriptions || [];
  if (status.state !== 'Running') return { level: 'idle', headline: status.state || 'Stopped', descriptions: d };
  const s = status.healthStatus || '';
  if (s === 'Excellent' || s === 'Good') return { level: 'good', headline: `Healthy (${s})`, descriptions: d };
  if (s === 'Poor') return { level: 'bad', headline: 'Poor', descriptions: d };
  return { level: 'warn', headline: s || 'Waiting', descriptions: d };
}

/**
 * One row per incoming track of getStatus: its id, kind, incoming and expected bitrate and ingest
 * drift. (getStatus carries no frame rate; the keyframe interval is the event's
 * `input.keyFrameIntervalDuration`, shown beside the table.)
 */
export function trackRows(status) {
  const val = (...vals) => vals.find((v) => v !== undefined && v !== null && v !== '');
  return ((status && status.trackStatus) || []).map((t) => {
    const track = String(val(t.trackName, t.trackId) ?? '');
    const kind = val(t.kind, t.type) ?? (/video/i.test(track) ? 'video' : /audio/i.test(track) ? 'audio' : '');
    return {
      track,
      kind,
      bitrate: val(t.incomingBitrate, t.bitrate),
      expectedBitrate: val(t.expectedBitrate),
      drift: val(t.ingestDrift),
    };
  });
}

/** A codec string's family for people: avc1.64001f → H.264. */
export function codecName(codec) {
  const c = String(codec || '');
  if (/^(avc1|avc3)/.test(c)) return 'H.264';
  if (/^(hvc1|hev1)/.test(c)) return 'HEVC';
  return c || 'video';
}

/**
 * The video as the appliance packages it (getStatus `videoInput`), in one line, and a warning
 * when the encoder's keyframe interval is not the event's (segments then follow the encoder's
 * GOP: longer latency, uneven segments). `expectedGop` in seconds.
 */
export function videoSummary(status, expectedGop = 2) {
  const v = status && status.videoInput;
  if (!v) return null;
  const fps = typeof v.frameRate === 'number' ? v.frameRate : null;
  const gop = typeof v.keyFrameIntervalSeconds === 'number' ? v.keyFrameIntervalSeconds : null;
  const fpsText = fps === null ? 'measuring frame rate…' : `${Number.isInteger(fps) ? fps : fps.toFixed(2)} fps`;
  const gopText = gop === null ? 'waiting for a second keyframe' : `keyframe every ${gop.toFixed(1)} s`;
  const size = v.width && v.height ? `${v.width}×${v.height} ` : '';
  let warning = null;
  if (gop !== null && expectedGop > 0 && Math.abs(gop - expectedGop) / expectedGop > 0.25) {
    warning = `The encoder sends a keyframe every ${gop.toFixed(1)} s; set its keyframe interval (GOP) to ${expectedGop} s, the event's, for even segments and lower latency.`;
  }
  return { text: `${size}${codecName(v.codec)}, ${fpsText}, ${gopText}`, fps, gop, warning };
}

/** The console's picture of a capture device: its name, or its id. */
export function captureLabel(d) {
  return (d && (d.name || d.id || d.path)) || 'capture device';
}

/** UTC stamp for resource names: 20260127-153012. */
export function stamp(date = new Date()) {
  const p = (n) => String(n).padStart(2, '0');
  return `${date.getUTCFullYear()}${p(date.getUTCMonth() + 1)}${p(date.getUTCDate())}-${p(date.getUTCHours())}${p(date.getUTCMinutes())}${p(date.getUTCSeconds())}`;
}

/** An IP camera's URL for RTSP pull. Returns an error sentence or ''. */
export function cameraUrlProblem(url) {
  let u;
  try { u = new URL(url); } catch { return 'Enter the camera\'s RTSP URL, for example rtsp://user:password@192.168.1.64/stream1.'; }
  if (u.protocol !== 'rtsp:' && u.protocol !== 'rtsps:') return 'The camera URL starts with rtsp:// (or rtsps://).';
  if (!u.hostname) return 'The camera URL needs the camera\'s address.';
  return '';
}

/** Live event names: `^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$`. Returns an error sentence or ''. */
export function eventNameProblem(name) {
  if (!name) return 'Give the event a name.';
  if (name.length > 32) return 'An event name has at most 32 characters.';
  if (!/^[A-Za-z0-9]/.test(name)) return 'An event name starts with a letter or a digit.';
  if (!/^[A-Za-z0-9_-]+$/.test(name)) return 'An event name uses only letters, digits, "-" and "_" (no spaces).';
  return '';
}

/** A name suggestion from free text ("Main stage!" → "main-stage"). */
export function suggestEventName(text) {
  const s = String(text || '').toLowerCase().normalize('NFKD').replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return s.slice(0, 32).replace(/-+$/, '') || 'event';
}

export const PROTOCOLS = [
  { value: 'RTMP', label: 'RTMP / RTMPS (OBS, vMix, Wirecast, hardware encoders)' },
  { value: 'SRT', label: 'SRT (hardware encoders, OBS over unreliable links)' },
  { value: 'RTSPPush', label: 'RTSP push (encoders that publish RTSP)' },
];

/**
 * The Go-live form's values → the names and bodies of what gets created: the event (stopped,
 * so that its recording exists before the encoder connects), an asset, a live output and a
 * streaming locator, as the RMS console does.
 */
export function planGoLive(form, now = new Date()) {
  const event = form.name;
  const st = stamp(now);
  const streamOptions = form.lowLatency ? ['LowLatency'] : ['Default'];
  const encodingType = form.encoding || 'PassthroughStandard';
  const input = { streamingProtocol: form.protocol || 'RTMP', keyFrameIntervalDuration: 'PT2S',
    accessControl: { ip: { allow: [{ name: 'AllowAll', address: '0.0.0.0', subnetPrefixLength: 0 }] } } };
  if (input.streamingProtocol === 'SRT' && form.srtPassphrase) input.srtPassphrase = form.srtPassphrase;
  if (input.streamingProtocol === 'RTSPPull') input.rtspPullUrl = form.rtspPullUrl;
  if (input.streamingProtocol === 'LocalCapture') {
    input.captureDevice = form.captureDevice;
    delete input.accessControl; // nothing connects to a capture event
  }
  const body = {
    location: form.location || 'local',
    properties: {
      description: form.description || '',
      input,
      encoding: { encodingType },
      streamOptions,
      preview: { accessControl: { ip: { allow: [{ name: 'AllowAll', address: '0.0.0.0', subnetPrefixLength: 0 }] } } },
    },
  };
  return {
    event,
    eventBody: body,
    ...outputNames(event, now),
    archiveWindow: form.archiveWindow || 'PT1H',
    stamp: st,
  };
}

/** The names of one recording of an event: a new asset, live output and locator per start. */
export function outputNames(event, now = new Date()) {
  const st = stamp(now);
  return { asset: `${event}-${st}`, output: `out-${st}`, locator: `${event}-${st}` };
}

/** ffmpeg's idea of a full RTMP URL: server + "/" + key. */
function joinKey(server, key) {
  return `${server.replace(/\/+$/, '')}/${key}`;
}

/**
 * What each encoder needs, from the event's `input.endpoints` and `accessToken`: a list of
 * {encoder, fields: [{label, value, id}]}. Ids are stable for tests and copy buttons.
 */
export function encoderSettings(event) {
  const input = (event && event.properties && event.properties.input) || {};
  const eps = input.endpoints || [];
  const token = input.accessToken || '';
  const url = (proto) => (eps.find((e) => e.protocol === proto) || {}).url;
  const out = [];
  const rtmp = url('RTMP'), rtmps = url('RTMPS'), srt = url('SRT'), rtsp = url('RTSP');
  if (rtmp) {
    out.push({ encoder: 'OBS Studio (RTMP)', fields: [
      { id: 'obs-server', label: 'Server', value: rtmp },
      { id: 'obs-key', label: 'Stream key', value: token },
    ] });
    out.push({ encoder: 'ffmpeg / one URL (RTMP)', fields: [{ id: 'rtmp-url', label: 'URL', value: joinKey(rtmp, token) }] });
  }
  if (rtmps) {
    out.push({ encoder: 'Encrypted (RTMPS)', fields: [
      { id: 'rtmps-server', label: 'Server', value: rtmps },
      { id: 'rtmps-key', label: 'Stream key', value: token },
    ] });
  }
  if (srt) {
    out.push({ encoder: 'SRT (OBS, ffmpeg, hardware encoders)', fields: [{ id: 'srt-url', label: 'SRT URL', value: srt }] });
  }
  if (rtsp && input.streamingProtocol === 'RTSPPull') {
    out.push({ encoder: 'IP camera (the appliance pulls it)', fields: [{ id: 'camera-url', label: 'Camera URL', value: rtsp }] });
  } else if (rtsp) {
    out.push({ encoder: 'RTSP push', fields: [{ id: 'rtsp-url', label: 'RTSP URL', value: rtsp }] });
  }
  return out;
}

/** Absolute playback URLs for the streaming endpoint's host, from listPaths' paths. */
export function playbackUrls(paths, host, scheme = 'https') {
  const out = [];
  if (!paths) return out;
  if (paths.hls) out.push({ id: 'play-hls', label: 'HLS (Apple, hls.js, most players)', value: `${scheme}://${host}${paths.hls}` });
  if (paths.dash) out.push({ id: 'play-dash', label: 'DASH (dash.js, Shaka, Android)', value: `${scheme}://${host}${paths.dash}` });
  return out;
}

/**
 * CPU use of the appliance between two /edge/v1/system reports, in percent of one core
 * (processCpuSeconds is cumulative).
 */
export function cpuPercent(prev, cur, elapsedSeconds) {
  const a = prev && prev.cpu && prev.cpu.processCpuSeconds;
  const b = cur && cur.cpu && cur.cpu.processCpuSeconds;
  if (a === undefined || a === null || b === undefined || b === null || !(elapsedSeconds > 0) || b < a) return null;
  return (100 * (b - a)) / elapsedSeconds;
}

export function diskSummary(disk) {
  if (!disk || disk.error || !disk.totalBytes) return { text: 'unknown', level: 'warn', usedPct: null };
  const used = disk.totalBytes - disk.availableBytes;
  const usedPct = Math.round((100 * used) / disk.totalBytes);
  const level = usedPct >= 95 ? 'bad' : usedPct >= 85 ? 'warn' : 'good';
  return { text: `${formatBytes(disk.availableBytes)} free of ${formatBytes(disk.totalBytes)}`, level, usedPct };
}

/**
 * The archive sync queue as the dashboard and archive show it. `doc` is GET /edge/v1/sync: null
 * when the endpoint is absent (404), `{targets: [], value: []}` when no storage target is
 * configured, else `{targets, value: [jobs with assetName, state, bytesDone, bytesTotal, url, error]}`.
 */
export function syncSummary(doc) {
  // 404 (an appliance without sync), or sync present with no storage target configured.
  const noTargets = doc && !Array.isArray(doc) && Array.isArray(doc.targets) && doc.targets.length === 0;
  if (doc === null || doc === undefined || noTargets) {
    return { configured: false, text: 'Sync not configured', items: [], counts: {} };
  }
  const items = Array.isArray(doc) ? doc : doc.value || doc.queue || doc.items || [];
  const counts = {};
  for (const it of items) {
    const s = syncState(it);
    counts[s] = (counts[s] || 0) + 1;
  }
  const pending = (counts.pending || 0) + (counts.uploading || 0);
  const failed = counts.failed || 0;
  let text = pending ? `${pending} waiting or uploading` : 'Nothing waiting';
  if (failed) text += `, ${failed} failed`;
  return { configured: true, text, items, counts };
}

function syncState(it) {
  const s = it && (it.state || (it.edgeSync && it.edgeSync.state) || '');
  return String(s).toLowerCase();
}

/** An asset's `properties.edgeSync` as one line. */
export function syncLine(edgeSync, configured = true) {
  if (!edgeSync) return configured ? 'Not queued' : 'Sync not configured';
  const s = String(edgeSync.state || '').toLowerCase();
  if (s === 'uploading' || s === 'pending') {
    const pct = edgeSync.bytesTotal ? Math.floor((100 * (edgeSync.bytesDone || 0)) / edgeSync.bytesTotal) : null;
    return s === 'pending' ? 'Waiting to upload' : `Uploading ${pct === null ? '' : pct + ' % '}(${formatBytes(edgeSync.bytesDone)} of ${formatBytes(edgeSync.bytesTotal)})`;
  }
  if (s === 'synced') return 'Synced';
  if (s === 'failed') return `Failed: ${edgeSync.error || 'no reason given'}`;
  return edgeSync.state || 'Unknown';
}

/** Which asset a live event records into now (from its live outputs), or null. */
export function currentRecording(outputs) {
  const o = (outputs || [])[0];
  return o ? { output: o.name, asset: o.properties && o.properties.assetName } : null;
}
