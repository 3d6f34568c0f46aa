// Unit tests of the console's API client (web/api.js) with a scripted fetch: `node --test`.
import test from 'node:test';
import assert from 'node:assert/strict';
import { Api, ApiError, API_VERSION, explain, parseErrorBody } from '../web/api.js';

/** A fetch that answers from a list of [method, path-regex, status, body, headers]. */
function fakeFetch(script) {
  const calls = [];
  const fn = async (url, init = {}) => {
    const method = init.method || 'GET';
    calls.push({ url, method, headers: init.headers || {}, body: init.body ? JSON.parse(init.body) : undefined });
    const i = script.findIndex(([m, re]) => m === method && re.test(url));
    if (i < 0) throw new TypeError(`fetch failed: no script for ${method} ${url}`);
    const [, , status, body, headers = {}] = script[i];
    if (script[i].once) script.splice(i, 1);
    const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
    return {
      ok: status >= 200 && status < 300, status,
      headers: { get: (k) => headers[k.toLowerCase()] ?? null },
      text: async () => text,
      blob: async () => new Blob([text], { type: headers['content-type'] || '' }),
    };
  };
  fn.calls = calls;
  return fn;
}

function memStorage() {
  const m = new Map();
  return { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, String(v)), removeItem: (k) => m.delete(k), m };
}

const IDENTITY = { subscriptionId: 'sub-1', resourceGroup: 'rg', accountName: 'acct', location: 'Local' };
const PREFIX = '/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.Media/mediaServices/acct';

test('login reads the identity with the key, then exchanges the key for a token kept in session storage', async () => {
  const f = fakeFetch([
    ['GET', /\/edge\/v1\/system$/, 200, { identity: IDENTITY, version: '0.1.0' }],
    ['POST', /\/auth\/token$/, 200, 'jwt.abc.def\n'],
  ]);
  const storage = memStorage();
  const api = new Api({ fetch: f, storage });
  await api.login('  rmse_key  ');
  assert.equal(f.calls[0].headers.Authorization, 'Bearer rmse_key');
  assert.deepEqual(f.calls[1].body, { subscriptionId: 'sub-1', apiKey: 'rmse_key' });
  assert.equal(f.calls[1].headers.Authorization, undefined, 'the token request carries no bearer');
  assert.equal(api.session.token, 'jwt.abc.def');
  assert.ok(!storage.m.get('rms-edge-console').includes('rmse_key'), 'the key itself is not stored');
  // A new client on the same storage (a page reload) is still signed in.
  const again = new Api({ fetch: f, storage });
  assert.ok(again.signedIn);
  assert.equal(again.prefix(), PREFIX);
});

test('a wrong key is refused with a plain sentence and nothing is stored', async () => {
  const f = fakeFetch([['GET', /\/edge\/v1\/system$/, 401,
    { error: { code: 'AuthenticationFailed', message: 'The API key is not valid (unknown, revoked or mistyped).' } }]]);
  const storage = memStorage();
  const api = new Api({ fetch: f, storage });
  await assert.rejects(api.login('rmse_wrong'), (e) => {
    assert.ok(e instanceof ApiError);
    assert.equal(e.status, 401);
    assert.match(explain(e, 'login'), /^That API key was not accepted\./);
    return true;
  });
  assert.equal(storage.m.size, 0);
  assert.ok(!api.signedIn);
  await assert.rejects(api.login('   '), /Enter the API key/);
});

test('ARM calls carry the token and api-version; a 401 signs out and tells the page', async () => {
  const f = fakeFetch([
    ['GET', /liveEvents\?api-version=/, 200, { value: [{ name: 'a' }], '@odata.nextLink': `http://h${PREFIX}/liveEvents?$skiptoken=1` }],
    ['GET', /liveEvents\?\$skiptoken=1/, 200, { value: [{ name: 'b' }] }],
    ['GET', /assets\?/, 401, { error: { code: 'InvalidAuthenticationToken', message: 'The token has expired.' } }],
  ]);
  const storage = memStorage();
  const api = new Api({ fetch: f, storage });
  api.session = { token: 'tok', identity: IDENTITY };
  const evs = await api.listEvents();
  assert.deepEqual(evs.map((e) => e.name), ['a', 'b'], 'follows @odata.nextLink');
  assert.equal(f.calls[0].url, `${PREFIX}/liveEvents?api-version=${API_VERSION}`);
  assert.equal(f.calls[0].headers.Authorization, 'Bearer tok');
  assert.equal(f.calls[1].url, `${PREFIX}/liveEvents?$skiptoken=1`, 'next pages stay on the page\'s origin');
  let told = null;
  api.onUnauthorized = (e) => { told = e; };
  await assert.rejects(api.listAssets(), (e) => e.status === 401);
  assert.ok(told && !api.signedIn, 'signed out on 401');
  assert.match(explain(told), /session has ended/);
});

test('long-running operations are followed to the end, and their failure is reported', async () => {
  const f = fakeFetch([
    ['POST', /liveEvents\/ev1\/start/, 202, undefined, { 'azure-asyncoperation': `http://h:1${PREFIX}/liveEventOperations/op1?api-version=2022-11-01` }],
    ['GET', /liveEventOperations\/op1/, 200, { name: 'op1', status: 'InProgress' }],
  ]);
  f.calls.length = 0;
  const api = new Api({ fetch: f, pollMs: 1 });
  api.session = { token: 't', identity: IDENTITY };
  // InProgress twice, then Succeeded.
  let n = 0;
  const seen = [];
  const orig = api.call.bind(api);
  api.call = async (m, p, o) => {
    if (p.includes('liveEventOperations')) {
      n++;
      return { name: 'op1', status: n < 3 ? 'InProgress' : 'Succeeded' };
    }
    return orig(m, p, o);
  };
  await api.startEvent('ev1', { onProgress: (s) => seen.push(s) });
  assert.deepEqual(seen, ['InProgress', 'InProgress', 'Succeeded']);
  api.call = async (m, p, o) => (p.includes('liveEventOperations')
    ? { name: 'op1', status: 'Failed', error: { code: 'Conflict', message: 'Another operation is in progress.' } }
    : orig(m, p, o));
  await assert.rejects(api.startEvent('ev1'), (e) => e.code === 'Conflict' && /Another operation/.test(e.message));
});

test('go live creates event, asset, live output and locator in order, with the plan\'s names', async () => {
  const f = fakeFetch([
    ['PUT', /liveEvents\/main\/liveOutputs\/out-1\?/, 201, { name: 'out-1' }],
    ['PUT', /liveEvents\/main\?/, 201, { name: 'main' }],
    ['PUT', /assets\/main-1\?/, 201, { name: 'main-1' }],
    ['PUT', /streamingLocators\/main-1\?/, 201, { name: 'main-1' }],
    ['POST', /liveEvents\/main\/start/, 202, undefined, {}],
  ]);
  const api = new Api({ fetch: f });
  api.session = { token: 't', identity: IDENTITY };
  const steps = [];
  await api.goLive({ event: 'main', eventBody: { location: 'x', properties: { input: { streamingProtocol: 'RTMP' } } },
    asset: 'main-1', output: 'out-1', locator: 'main-1', archiveWindow: 'PT1H' }, { step: (s) => steps.push(s), start: true });
  assert.deepEqual(f.calls.map((c) => `${c.method} ${c.url.split('?')[0].slice(PREFIX.length)}`), [
    'PUT /liveEvents/main', 'PUT /assets/main-1', 'PUT /liveEvents/main/liveOutputs/out-1',
    'PUT /streamingLocators/main-1', 'POST /liveEvents/main/start']);
  assert.deepEqual(f.calls[2].body.properties, { assetName: 'main-1', archiveWindowLength: 'PT1H', manifestName: 'manifest' });
  assert.deepEqual(f.calls[3].body.properties, { assetName: 'main-1', streamingPolicyName: 'Predefined_ClearStreamingOnly' });
  assert.equal(steps.length, 5);
});

test('sync answers null when it is not configured (404) and throws on other failures', async () => {
  const api = new Api({ fetch: fakeFetch([['GET', /\/edge\/v1\/sync$/, 404, { error: { code: 'NotFound', message: 'No such path: /edge/v1/sync' } }]]) });
  api.session = { token: 't', identity: IDENTITY };
  assert.equal(await api.sync(), null);
  const api2 = new Api({ fetch: fakeFetch([['GET', /\/edge\/v1\/sync$/, 500, 'boom']]) });
  api2.session = { token: 't', identity: IDENTITY };
  await assert.rejects(api2.sync(), (e) => e.status === 500);
  const api3 = new Api({ fetch: fakeFetch([['POST', /\/edge\/v1\/sync\/a%20b\/retry$/, 202, { state: 'pending' }]]) });
  api3.session = { token: 't', identity: IDENTITY };
  assert.deepEqual(await api3.retrySync('a b'), { state: 'pending' });
});

test('asset playback reads the first locator\'s paths', async () => {
  const f = fakeFetch([
    ['POST', /assets\/rec\/listStreamingLocators/, 200, { streamingLocators: [{ name: 'loc', streamingLocatorId: 'g-1' }] }],
    ['POST', /streamingLocators\/loc\/listPaths/, 200, { streamingPaths: [
      { streamingProtocol: 'Hls', paths: ['/g-1/manifest.ism/manifest(format=m3u8-cmaf)'] },
      { streamingProtocol: 'Dash', paths: ['/g-1/manifest.ism/manifest(format=mpd-time-cmaf)'] }] }],
  ]);
  const api = new Api({ fetch: f });
  api.session = { token: 't', identity: IDENTITY };
  assert.deepEqual(await api.assetPlayback('rec'), { locator: 'loc', locatorId: 'g-1',
    hls: '/g-1/manifest.ism/manifest(format=m3u8-cmaf)', dash: '/g-1/manifest.ism/manifest(format=mpd-time-cmaf)' });
  const none = new Api({ fetch: fakeFetch([['POST', /listStreamingLocators/, 200, { streamingLocators: [] }]]) });
  none.session = { token: 't', identity: IDENTITY };
  assert.equal(await none.assetPlayback('rec'), null);
});

test('errors become plain sentences with what to do next', () => {
  const e = parseErrorBody(409, JSON.stringify({ error: { code: 'Conflict', message: 'Live event ev is Running: stop it first' } }));
  assert.equal(e.code, 'Conflict');
  assert.equal(explain(e), 'Live event ev is Running: stop it first.', 'the message already says what to do');
  assert.equal(explain(parseErrorBody(409, '{"error":{"code":"Conflict","message":"Another operation is in progress on live event ev"}}')),
    'Another operation is in progress on live event ev. Wait a few seconds for the current operation to finish, then try again.');
  assert.match(explain(parseErrorBody(400, '{"error":{"code":"InvalidParameter","message":"Bad name."}}')), /^Bad name\. Correct it/);
  assert.match(explain(parseErrorBody(404, '{"error":{"code":"NotFound","message":"Live event x was not found."}}')), /refresh the page/);
  assert.match(explain(parseErrorBody(500, '<html>oops</html>')), /restart the appliance/);
  assert.match(explain(new ApiError(0, 'NetworkError', 'fetch failed', { network: true })), /did not answer/);
  assert.equal(explain(new Error('plain')), 'plain.');
  assert.equal(parseErrorBody(502, '').message, 'The appliance answered HTTP 502.');
});

test('a network failure is an ApiError marked network', async () => {
  const api = new Api({ fetch: async () => { throw new TypeError('Failed to fetch'); } });
  api.session = { token: 't', identity: IDENTITY };
  await assert.rejects(api.system(), (e) => e instanceof ApiError && e.network && e.status === 0);
});

test('thumbnails are fetched with the token and become object URLs; no picture yet is null', async () => {
  const f = fakeFetch([
    ['GET', /\/edge\/v1\/system$/, 200, { identity: IDENTITY, version: '0.1.0' }],
    ['POST', /\/auth\/token$/, 200, 'jwt.abc.def'],
    ['GET', /liveEvents\/cam%201\/thumbnail\?width=320$/, 200, '\xff\xd8jpeg', { 'content-type': 'image/jpeg' }],
    ['GET', /liveEvents\/idle\/thumbnail/, 404, { error: { code: 'ThumbnailNotAvailable', message: 'Live event \'idle\' is not running and has no picture yet.' } }],
    ['GET', /captureDevices\/video0\/thumbnail\?width=640$/, 503, { error: { code: 'CaptureDeviceUnavailable', message: 'Capture device \'video0\' gave no picture: busy.' } }],
    ['PUT', /\/edge\/v1\/sync\/settings$/, 200, { uploadMaxMbps: 5, uploadUnlimitedWindow: '', source: 'console' }],
  ]);
  const api = new Api({ fetch: f, storage: memStorage() });
  await api.login('rmse_key');
  const url = await api.eventThumbnail('cam 1');
  assert.match(url, /^blob:/);
  assert.equal(f.calls.at(-1).headers.Authorization, 'Bearer jwt.abc.def');
  const blob = await (await fetch(url)).blob();
  assert.equal(blob.type, 'image/jpeg');
  URL.revokeObjectURL(url);
  assert.equal(await api.eventThumbnail('idle'), null);
  await assert.rejects(api.deviceThumbnail('video0', 640), (e) => e instanceof ApiError && e.status === 503 && /gave no picture/.test(e.message));
  const s = await api.setSyncSettings({ uploadMaxMbps: 5, uploadUnlimitedWindow: '' });
  assert.deepEqual(f.calls.at(-1).body, { uploadMaxMbps: 5, uploadUnlimitedWindow: '' });
  assert.equal(s.source, 'console');
});
