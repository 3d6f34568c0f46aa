// Unit tests of the console's view helpers (web/views.js): `node --test`.
import test from 'node:test';
import assert from 'node:assert/strict';
import * as v from '../web/views.js';

test('formatting', () => {
  assert.equal(v.formatBytes(0), '0 B');
  assert.equal(v.formatBytes(1500), '1.5 kB');
  assert.equal(v.formatBytes(250e9), '250 GB');
  assert.equal(v.formatBytes(undefined), '—');
  assert.equal(v.formatBitrate(1_500_000), '1.50 Mb/s');
  assert.equal(v.formatBitrate(128000), '128 kb/s');
  assert.equal(v.formatBitrate(null), '—');
  assert.equal(v.formatSeconds(42), '42 s');
  assert.equal(v.formatSeconds(185), '3 min 05 s');
  assert.equal(v.formatSeconds(3720), '1 h 02 min');
  assert.equal(v.esc('<a href="x">&\'</a>'), '&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;');
});

test('ISO durations and playlists', () => {
  assert.equal(v.isoDurationSeconds('PT1H30M'), 5400);
  assert.equal(v.isoDurationSeconds('P1DT2S'), 86402);
  assert.equal(v.isoDurationSeconds('PT2.5S'), 2.5);
  assert.equal(v.isoDurationSeconds('PT'), null);
  assert.equal(v.isoDurationSeconds('1H'), null);
  const media = '#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.000,\n1.m4s\n#EXTINF:1.968,\n2.m4s\n#EXT-X-ENDLIST\n';
  assert.equal(v.playlistSeconds(media), 3.968);
  const mv = '#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,URI="audio/index.m3u8"\n#EXT-X-STREAM-INF:BANDWIDTH=1\r\nvideo/index.m3u8\n';
  assert.equal(v.firstVariant(mv), 'video/index.m3u8');
  assert.equal(v.firstVariant(media), null);
});

test('health from getStatus', () => {
  assert.equal(v.health(null).level, 'idle');
  assert.equal(v.health({ state: 'Stopped', healthDescriptions: ['The live event is not running.'] }).level, 'idle');
  const poor = v.health({ state: 'Running', healthStatus: 'Poor', healthDescriptions: ['Waiting for the encoder'] });
  assert.equal(poor.level, 'bad');
  assert.deepEqual(poor.descriptions, ['Waiting for the encoder']);
  assert.equal(v.health({ state: 'Running', healthStatus: 'Excellent' }).level, 'good');
  assert.equal(v.health({ state: 'Running', healthStatus: 'Good' }).headline, 'Healthy (Good)');
  assert.equal(v.health({ state: 'Running', healthStatus: '' }).level, 'warn');
  // As the appliance's getStatus answers.
  const rows = v.trackRows({ trackStatus: [
    { trackId: 'video', expectedBitrate: 1500000, incomingBitrate: 1480000, ingestDrift: '0', requestReceived: 1 },
    { trackId: 'audio', expectedBitrate: 128000, incomingBitrate: null, ingestDrift: '0' }] });
  assert.deepEqual(rows[0], { track: 'video', kind: 'video', bitrate: 1480000, expectedBitrate: 1500000, drift: '0' });
  assert.equal(rows[1].kind, 'audio');
  assert.equal(rows[1].bitrate, undefined, 'no incoming bitrate yet');
  assert.equal(v.trackRows({ trackStatus: [{ trackName: 'x', type: 'Video', bitrate: 5 }] })[0].kind, 'Video');
  assert.deepEqual(v.trackRows(null), []);
  assert.equal(v.stateClass('Running'), 'ok');
  assert.equal(v.stateClass('Starting'), 'busy');
});

test('camera URLs and RTSP pull events', () => {
  assert.equal(v.cameraUrlProblem('rtsp://admin:pw@192.168.1.64:554/stream1'), '');
  assert.match(v.cameraUrlProblem('http://cam/x'), /rtsp:\/\//);
  assert.match(v.cameraUrlProblem('not a url'), /for example/);
  const p = v.planGoLive({ name: 'cam1', protocol: 'RTSPPull', rtspPullUrl: 'rtsp://u:p@cam/s' });
  assert.equal(p.eventBody.properties.input.rtspPullUrl, 'rtsp://u:p@cam/s');
  assert.equal(v.planGoLive({ name: 'x', protocol: 'RTMP', rtspPullUrl: 'rtsp://c/s' }).eventBody.properties.input.rtspPullUrl, undefined);
  const s = v.encoderSettings({ properties: { input: { streamingProtocol: 'RTSPPull', endpoints: [{ protocol: 'RTSP', url: 'rtsp://cam/s' }] } } });
  assert.deepEqual(s.map((e) => e.fields[0].id), ['camera-url']);
});

test('event names', () => {
  assert.equal(v.eventNameProblem('main-stage_1'), '');
  assert.match(v.eventNameProblem(''), /name/);
  assert.match(v.eventNameProblem('a'.repeat(33)), /32/);
  assert.match(v.eventNameProblem('-x'), /starts with/);
  assert.match(v.eventNameProblem('main stage'), /no spaces/);
  assert.equal(v.suggestEventName('Main Stage — Day 2!'), 'main-stage-day-2');
  assert.equal(v.suggestEventName('!!!'), 'event');
  assert.ok(v.suggestEventName('x'.repeat(50)).length <= 32);
  assert.equal(v.eventNameProblem(v.suggestEventName('Ünïcode Hall')), '');
});

test('the go-live plan: names and bodies of the event, asset, output and locator', () => {
  const now = new Date(Date.UTC(2026, 0, 27, 15, 30, 12));
  const p = v.planGoLive({ name: 'main', protocol: 'SRT', lowLatency: true, archiveWindow: 'PT4H' }, now);
  assert.equal(p.event, 'main');
  assert.equal(p.asset, 'main-20260127-153012');
  assert.equal(p.output, 'out-20260127-153012');
  assert.equal(p.locator, 'main-20260127-153012');
  assert.equal(p.archiveWindow, 'PT4H');
  assert.equal(p.eventBody.properties.input.streamingProtocol, 'SRT');
  assert.deepEqual(p.eventBody.properties.streamOptions, ['LowLatency']);
  assert.equal(p.eventBody.properties.encoding.encodingType, 'PassthroughStandard');
  assert.ok(p.eventBody.location);
  // Live output names allow only letters, digits and inner hyphens.
  assert.match(p.output, /^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$/);
  const d = v.planGoLive({ name: 'x' }, now);
  assert.equal(d.eventBody.properties.input.streamingProtocol, 'RTMP');
  assert.deepEqual(d.eventBody.properties.streamOptions, ['Default']);
  assert.equal(d.archiveWindow, 'PT1H');
});

test('encoder settings per encoder from the event\'s endpoints', () => {
  const rtmp = { properties: { input: { accessToken: 'abc123', endpoints: [
    { protocol: 'RTMP', url: 'rtmp://10.0.0.2:1935/live' }, { protocol: 'RTMPS', url: 'rtmps://10.0.0.2:2935/live' }] } } };
  const s = v.encoderSettings(rtmp);
  const field = (id) => s.flatMap((e) => e.fields).find((f) => f.id === id).value;
  assert.equal(field('obs-server'), 'rtmp://10.0.0.2:1935/live');
  assert.equal(field('obs-key'), 'abc123');
  assert.equal(field('rtmp-url'), 'rtmp://10.0.0.2:1935/live/abc123');
  assert.equal(field('rtmps-server'), 'rtmps://10.0.0.2:2935/live');
  const srt = v.encoderSettings({ properties: { input: { accessToken: 't', endpoints: [{ protocol: 'SRT', url: 'srt://h:9000?streamid=t' }] } } });
  assert.deepEqual(srt.map((e) => e.fields[0].id), ['srt-url']);
  const rtsp = v.encoderSettings({ properties: { input: { endpoints: [{ protocol: 'RTSP', url: 'rtsp://h:8554/live/t' }] } } });
  assert.equal(rtsp[0].fields[0].value, 'rtsp://h:8554/live/t');
  assert.deepEqual(v.encoderSettings({}), []);
});

test('playback URLs, CPU, disk and sync summaries', () => {
  const u = v.playbackUrls({ hls: '/g/manifest.ism/manifest(format=m3u8-cmaf)', dash: '/g/m.ism/manifest(format=mpd-time-cmaf)' }, 'box:8443');
  assert.equal(u[0].value, 'https://box:8443/g/manifest.ism/manifest(format=m3u8-cmaf)');
  assert.equal(u[1].id, 'play-dash');
  assert.deepEqual(v.playbackUrls(null, 'h'), []);
  assert.equal(v.cpuPercent({ cpu: { processCpuSeconds: 10 } }, { cpu: { processCpuSeconds: 10.3 } }, 3), 10.000000000000023);
  assert.equal(v.cpuPercent(null, { cpu: { processCpuSeconds: 1 } }, 3), null);
  assert.equal(v.cpuPercent({ cpu: { processCpuSeconds: 5 } }, { cpu: { processCpuSeconds: 4 } }, 3), null, 'a restart');
  const d = v.diskSummary({ totalBytes: 100e9, availableBytes: 10e9 });
  assert.equal(d.usedPct, 90);
  assert.equal(d.level, 'warn');
  assert.equal(d.text, '10 GB free of 100 GB');
  assert.equal(v.diskSummary({ error: 'x' }).text, 'unknown');
  assert.deepEqual(v.syncSummary(null), { configured: false, text: 'Sync not configured', items: [], counts: {} });
  assert.equal(v.syncSummary({ targets: [], value: [] }).configured, false, 'no storage target = not configured');
  assert.equal(v.syncSummary({ targets: [{ name: 'blob', kind: 'azure' }], value: [] }).text, 'Nothing waiting');
  const s = v.syncSummary({ targets: [{ name: 'blob' }], value: [{ state: 'Pending' }, { state: 'uploading' }, { state: 'failed' }, { state: 'synced' }] });
  assert.equal(s.text, '2 waiting or uploading, 1 failed');
  assert.equal(v.syncSummary({ queue: [] }).text, 'Nothing waiting');
  assert.equal(v.syncSummary([{ edgeSync: { state: 'failed' } }]).counts.failed, 1);
  assert.equal(v.syncLine(null, false), 'Sync not configured');
  assert.equal(v.syncLine(null, true), 'Not queued');
  assert.equal(v.syncLine({ state: 'uploading', bytesDone: 5e6, bytesTotal: 20e6 }), 'Uploading 25 % (5.0 MB of 20 MB)');
  assert.equal(v.syncLine({ state: 'failed', error: 'container not found' }), 'Failed: container not found');
  assert.equal(v.syncLine({ state: 'synced', url: 'https://x' }), 'Synced');
  assert.deepEqual(v.currentRecording([{ name: 'o', properties: { assetName: 'a' } }]), { output: 'o', asset: 'a' });
  assert.equal(v.currentRecording([]), null);
});

test('the video input in one line, with a warning when the keyframe interval is not the event\'s', () => {
  assert.equal(v.videoSummary(null), null);
  assert.equal(v.videoSummary({ trackStatus: [] }), null);
  const ok = v.videoSummary({ videoInput: { codec: 'avc1.64001f', width: 1280, height: 720, frameRate: 29.97, keyFrameIntervalSeconds: 2.002 } }, 2);
  assert.equal(ok.text, '1280×720 H.264, 29.97 fps, keyframe every 2.0 s');
  assert.equal(ok.warning, null);
  const long = v.videoSummary({ videoInput: { codec: 'hvc1.1.6.L93.B0', width: 1920, height: 1080, frameRate: 25, keyFrameIntervalSeconds: 10 } }, 2);
  assert.equal(long.text, '1920×1080 HEVC, 25 fps, keyframe every 10.0 s');
  assert.match(long.warning, /every 10\.0 s; set its keyframe interval \(GOP\) to 2 s/);
  const early = v.videoSummary({ videoInput: { codec: 'avc1', width: 0, height: 0, frameRate: null, keyFrameIntervalSeconds: null } });
  assert.equal(early.text, 'H.264, measuring frame rate…, waiting for a second keyframe');
  assert.equal(early.warning, null);
});

test('a capture device as an event\'s input', () => {
  const p = v.planGoLive({ name: 'c920', protocol: 'LocalCapture', captureDevice: 'usb-046d_C920-video-index0', encoding: 'Standard' });
  const input = p.eventBody.properties.input;
  assert.equal(input.streamingProtocol, 'LocalCapture');
  assert.equal(input.captureDevice, 'usb-046d_C920-video-index0');
  assert.equal(input.accessControl, undefined, 'nothing connects to a capture event');
  assert.equal(p.eventBody.properties.encoding.encodingType, 'Standard');
  assert.equal(v.planGoLive({ name: 'x', protocol: 'RTMP', captureDevice: 'video0' }).eventBody.properties.input.captureDevice, undefined);
  assert.equal(v.captureLabel({ id: 'video0', name: 'HD Pro Webcam C920' }), 'HD Pro Webcam C920');
  assert.equal(v.captureLabel({ id: 'video0', name: '' }), 'video0');
  assert.equal(v.suggestEventName('HD Pro Webcam C920-1127 1530'), 'hd-pro-webcam-c920-1127-1530');
});
