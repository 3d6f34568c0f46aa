// The console's client for the appliance's own API: the RMS / AMS v3 ARM paths, /auth/token and
// the appliance's /edge/v1 endpoints. No DOM here: it runs under `node --test` with a fake fetch.

export const API_VERSION = '2022-11-01';
const SESSION_KEY = 'rms-edge-console';

/** An API failure, with the ARM error envelope's code and message and the HTTP status. */
export class ApiError extends Error {
  constructor(status, code, message, { network = false } = {}) {
    super(message || code || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = code || '';
    this.network = network;
  }
}

/** Reads `{error:{code,message}}` (the ARM envelope) from a failed response's text. */
export function parseErrorBody(status, text) {
  try {
    const doc = JSON.parse(text);
    if (doc && doc.error) return new ApiError(status, doc.error.code, doc.error.message);
  } catch { /* not JSON */ }
  const t = (text || '').trim();
  return new ApiError(status, '', t && t.length < 300 ? t : `The appliance answered HTTP ${status}.`);
}

function sentence(s) {
  s = (s || '').trim();
  if (!s) return '';
  return /[.!?]$/.test(s) ? s : s + '.';
}

/**
 * A failure as plain sentences for a technician: what happened, then what to do next.
 * `context` is 'login' on the sign-in page (a 401 there means a wrong key).
 */
export function explain(err, context = '') {
  if (!(err instanceof ApiError)) {
    return sentence(err && err.message ? err.message : String(err)) || 'Something went wrong. Try again.';
  }
  if (err.network) {
    return 'The appliance did not answer. Check that this device is on the venue network and the appliance is powered on, then try again.';
  }
  const msg = sentence(err.message);
  switch (err.status) {
    case 401:
      if (context === 'login') {
        return 'That API key was not accepted. Check that you copied the whole key (it starts with rmse_), or ask for a new one with `rms-edge keys create` on the appliance.';
      }
      return 'Your session has ended (it expired or its key was revoked). Sign in again with an API key.';
    case 403:
      return `${msg} Sign in with a key that is allowed to do this.`;
    case 404:
      return `${msg} It may have been deleted from another screen: refresh the page.`;
    case 409:
      // The appliance's conflict messages usually say what to do ("… stop it first"); add a
      // next step only when they do not.
      if (/\b(first|try again|wait)\b/i.test(msg)) return msg;
      return `${msg} Wait a few seconds for the current operation to finish, then try again.`;
    case 400:
    case 422:
      return `${msg} Correct it and try again.`;
    case 429:
      return 'The appliance is busy. Wait a few seconds and try again.';
    default:
      if (err.status >= 500) {
        return `${msg} Try again; if it keeps failing, restart the appliance and send its log to your support contact.`;
      }
      return msg || `The appliance answered HTTP ${err.status}.`;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Api {
  /**
   * @param {object} o
   * @param {string} [o.base] origin of the appliance ('' = the page's own)
   * @param {Function} [o.fetch]
   * @param {Storage} [o.storage] where the session (token and identity) is kept: sessionStorage
   */
  constructor({ base = '', fetch = globalThis.fetch.bind(globalThis), storage = null, pollMs = 500 } = {}) {
    this.base = base;
    this.fetch = fetch;
    this.storage = storage;
    this.pollMs = pollMs;
    this.session = null;
    this.onUnauthorized = null;
    if (storage) {
      try { this.session = JSON.parse(storage.getItem(SESSION_KEY) || 'null'); } catch { this.session = null; }
    }
  }

  get signedIn() { return !!(this.session && this.session.token); }
  get identity() { return this.session ? this.session.identity : null; }

  /** The ARM prefix of this appliance's media services account. */
  prefix() {
    const id = this.identity;
    if (!id) throw new ApiError(401, 'NotSignedIn', 'Not signed in');
    return `/subscriptions/${id.subscriptionId}/resourceGroups/${id.resourceGroup}/providers/Microsoft.Media/mediaServices/${id.accountName}`;
  }

  arm(rest) { return `${this.prefix()}/${rest}?api-version=${API_VERSION}`; }

  async raw(method, path, { body, token, headers = {} } = {}) {
    const h = { ...headers };
    const t = token ?? (this.session && this.session.token);
    if (t) h.Authorization = `Bearer ${t}`;
    if (body !== undefined) h['Content-Type'] = 'application/json';
    let resp;
    try {
      resp = await this.fetch(this.base + path, {
        method, headers: h, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store',
      });
    } catch (e) {
      throw new ApiError(0, 'NetworkError', String(e && e.message || e), { network: true });
    }
    return resp;
  }

  /** A call that must succeed; answers the parsed JSON (or null for an empty body). */
  async call(method, path, opts = {}) {
    const resp = await this.raw(method, path, opts);
    const text = await resp.text();
    if (!resp.ok) {
      const err = parseErrorBody(resp.status, text);
      if (resp.status === 401 && !opts.token && this.signedIn) {
        this.signOut();
        if (this.onUnauthorized) this.onUnauthorized(err);
      }
      throw err;
    }
    const out = text ? JSON.parse(text) : null;
    if (opts.withResponse) return { body: out, resp };
    return out;
  }

  /**
   * Signs in with an API key: the key reads the appliance's identity (GET /edge/v1/system), then
   * POST /auth/token exchanges it for a JWT. Only the token and identity are kept (sessionStorage).
   */
  async login(apiKey) {
    const key = (apiKey || '').trim();
    if (!key) throw new ApiError(401, 'EmptyKey', 'Enter the API key');
    const system = await this.call('GET', '/edge/v1/system', { token: key });
    const resp = await this.raw('POST', '/auth/token', {
      token: '', body: { subscriptionId: system.identity.subscriptionId, apiKey: key },
    });
    const text = await resp.text();
    if (!resp.ok) throw parseErrorBody(resp.status, text);
    this.session = { token: text.trim(), identity: system.identity };
    if (this.storage) this.storage.setItem(SESSION_KEY, JSON.stringify(this.session));
    return system;
  }

  signOut() {
    this.session = null;
    if (this.storage) this.storage.removeItem(SESSION_KEY);
  }

  /** Waits for a long-running operation (Azure-AsyncOperation) to end; throws its error. */
  async waitOperation(resp, { timeoutMs = 60000, onProgress } = {}) {
    const url = resp.headers.get('azure-asyncoperation');
    if (!url) return;
    const u = new URL(url, 'http://x/');
    const path = u.pathname + u.search;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const op = await this.call('GET', path);
      if (onProgress) onProgress(op.status);
      if (op.status === 'Succeeded') return op;
      if (op.status === 'Failed' || op.status === 'Canceled') {
        const e = op.error || {};
        throw new ApiError(409, e.code || 'OperationFailed', e.message || `The operation ${op.status.toLowerCase()}.`);
      }
      if (Date.now() > deadline) throw new ApiError(504, 'Timeout', 'The appliance did not finish the operation in time');
      await sleep(this.pollMs);
    }
  }

  /** A PUT/POST/DELETE that may be long-running: waits for it. */
  async lro(method, rest, body, opts = {}) {
    const { body: out, resp } = await this.call(method, this.arm(rest), { body, withResponse: true });
    await this.waitOperation(resp, opts);
    return out;
  }

  // -- ARM resources ----------------------------------------------------------------------
  async listAll(rest) {
    let page = await this.call('GET', this.arm(rest));
    const items = [...(page.value || [])];
    while (page['@odata.nextLink']) {
      const u = new URL(page['@odata.nextLink']);
      page = await this.call('GET', u.pathname + u.search);
      items.push(...(page.value || []));
    }
    return items;
  }

  listEvents() { return this.listAll('liveEvents'); }
  getEvent(name) { return this.call('GET', this.arm(`liveEvents/${enc(name)}`)); }
  createEvent(name, body, opts) { return this.lro('PUT', `liveEvents/${enc(name)}`, body, opts); }
  startEvent(name, opts) { return this.lro('POST', `liveEvents/${enc(name)}/start`, undefined, opts); }
  stopEvent(name, opts) {
    return this.lro('POST', `liveEvents/${enc(name)}/stop`, { removeOutputsOnStop: true }, opts);
  }
  deleteEvent(name, opts) { return this.lro('DELETE', `liveEvents/${enc(name)}`, undefined, opts); }
  async eventStatus(name) {
    const r = await this.call('POST', this.arm(`liveEvents/${enc(name)}/getStatus`));
    return (r && r.value && r.value[0]) || null;
  }
  async streamEvents(name) {
    const r = await this.call('POST', this.arm(`liveEvents/${enc(name)}/getStreamEvents`));
    return (r && r.value) || [];
  }
  listOutputs(event) { return this.listAll(`liveEvents/${enc(event)}/liveOutputs`); }
  createOutput(event, name, body, opts) {
    return this.lro('PUT', `liveEvents/${enc(event)}/liveOutputs/${enc(name)}`, body, opts);
  }

  listAssets() { return this.listAll('assets'); }
  getAsset(name) { return this.call('GET', this.arm(`assets/${enc(name)}`)); }
  createAsset(name, body = { properties: {} }) { return this.call('PUT', this.arm(`assets/${enc(name)}`), { body }); }
  deleteAsset(name) { return this.call('DELETE', this.arm(`assets/${enc(name)}`)); }
  async assetLocators(name) {
    const r = await this.call('POST', this.arm(`assets/${enc(name)}/listStreamingLocators`));
    return (r && r.streamingLocators) || [];
  }

  createLocator(name, assetName) {
    return this.call('PUT', this.arm(`streamingLocators/${enc(name)}`), {
      body: { properties: { assetName, streamingPolicyName: 'Predefined_ClearStreamingOnly' } },
    });
  }
  listPaths(locator) { return this.call('POST', this.arm(`streamingLocators/${enc(locator)}/listPaths`)); }
  listEndpoints() { return this.listAll('streamingEndpoints'); }

  // -- the appliance's own endpoints -------------------------------------------------------
  system() { return this.call('GET', '/edge/v1/system'); }
  /** The archive sync queue, or null when sync is not configured (404). */
  async sync() {
    try {
      return await this.call('GET', '/edge/v1/sync');
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return null;
      throw e;
    }
  }
  /** The video encoder transcoding uses here, and why: {encoder, hardware, decoder, reason}. */
  encoders() { return this.call('GET', '/edge/v1/encoders'); }
  /** The local capture devices (V4L2), by stable id. */
  async captureDevices() { return (await this.call('GET', '/edge/v1/captureDevices')).value || []; }
  /**
   * A thumbnail (JPEG) as an object URL, or null when there is no picture (404). The caller
   * revokes the URL. Images need the bearer token, so they are fetched, not linked.
   */
  async thumbnail(path) {
    const resp = await this.raw('GET', path);
    if (resp.status === 404) return null;
    if (!resp.ok) throw parseErrorBody(resp.status, await resp.text());
    return URL.createObjectURL(await resp.blob());
  }
  eventThumbnail(name, width = 320) { return this.thumbnail(`/edge/v1/liveEvents/${enc(name)}/thumbnail?width=${width}`); }
  deviceThumbnail(id, width = 320) { return this.thumbnail(`/edge/v1/captureDevices/${enc(id)}/thumbnail?width=${width}`); }
  /** The upload bandwidth cap: {uploadMaxMbps, uploadUnlimitedWindow}. */
  syncSettings() { return this.call('GET', '/edge/v1/sync/settings'); }
  setSyncSettings(s) { return this.call('PUT', '/edge/v1/sync/settings', { body: s }); }
  retrySync(asset) { return this.call('POST', `/edge/v1/sync/${enc(asset)}/retry`); }
  async keys() { return (await this.call('GET', '/edge/v1/keys')).value || []; }
  createKey(name) { return this.call('POST', '/edge/v1/keys', { body: { name } }); }
  revokeKey(id) { return this.call('DELETE', `/edge/v1/keys/${enc(id)}`); }

  // -- flows ---------------------------------------------------------------------------------
  /**
   * What the RMS console does on "create live event": the event, then an asset, a live output
   * recording into it and a streaming locator on it. `step(label)` reports progress.
   */
  async goLive(plan, { step = () => {}, start = false } = {}) {
    step(`Creating live event ${plan.event}`);
    const event = await this.createEvent(plan.event, plan.eventBody);
    await this.prepareOutput(plan, { step });
    if (start) {
      step('Starting the live event');
      await this.startEvent(plan.event);
    }
    return event;
  }

  /** Asset + live output + locator for an event (before each start: a recording is never reused). */
  async prepareOutput(plan, { step = () => {} } = {}) {
    step(`Creating asset ${plan.asset}`);
    await this.createAsset(plan.asset, { properties: { description: `Recording of live event ${plan.event}` } });
    step(`Creating live output ${plan.output}`);
    await this.createOutput(plan.event, plan.output, {
      properties: { assetName: plan.asset, archiveWindowLength: plan.archiveWindow, manifestName: 'manifest' },
    });
    step(`Creating streaming locator ${plan.locator}`);
    await this.createLocator(plan.locator, plan.asset);
  }

  /** The playback paths of an asset's first locator: {locator, hls, dash} (paths, or null). */
  async assetPlayback(assetName) {
    const locs = await this.assetLocators(assetName);
    if (!locs.length) return null;
    const loc = locs[0];
    const p = await this.listPaths(loc.name);
    const find = (proto) => {
      const sp = (p.streamingPaths || []).find((s) => s.streamingProtocol === proto);
      return sp && sp.paths && sp.paths[0] ? sp.paths[0] : null;
    };
    return { locator: loc.name, locatorId: loc.streamingLocatorId, hls: find('Hls'), dash: find('Dash') };
  }
}

function enc(s) { return encodeURIComponent(s); }
