// RMS live quickstart (12 steps) with the official JS SDK @azure/arm-mediaservices (node:test).
//
// Started by tests/sdk/test_js_sdk.py, which runs the real binary and passes, through the environment:
//   RMS_EDGE_URL (https://... or http://...), RMS_EDGE_API_KEY, RMS_EDGE_SUBSCRIPTION, RMS_EDGE_RESOURCE_GROUP,
//   RMS_EDGE_ACCOUNT, RMS_EDGE_PUBLIC_HOST, RMS_EDGE_RTMP_PORT, RMS_EDGE_RTMPS_PORT,
//   and for https NODE_EXTRA_CA_CERTS=<data-dir>/tls/cert.pem (node reads it at start-up, so the SDK's default
//   https agent trusts the appliance's self-signed certificate; no rejectUnauthorized=false anywhere).
//
// The SDK is unmodified; only the endpoint and the credential are repointed (as in Ravnur's JS demo).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { randomUUID } from "node:crypto";

// The packages are installed (npm ci) in tests/js/, next to package.json and package-lock.json.
const require = createRequire(new URL("../../js/package.json", import.meta.url));
const { AzureMediaServices } = require("@azure/arm-mediaservices");
const {
  bearerTokenAuthenticationPolicyName,
  createDefaultHttpClient,
  createHttpHeaders,
  createPipelineRequest,
} = require("@azure/core-rest-pipeline");

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set (run through tests/sdk/test_js_sdk.py)`);
  return v;
};
const BASE = env("RMS_EDGE_URL").replace(/\/$/, "");
const INSECURE = BASE.startsWith("http://");
const SUB = env("RMS_EDGE_SUBSCRIPTION");
const RG = env("RMS_EDGE_RESOURCE_GROUP");
const ACCT = env("RMS_EDGE_ACCOUNT");
const KEY = env("RMS_EDGE_API_KEY");
const PUBLIC_HOST = env("RMS_EDGE_PUBLIC_HOST");
const RTMP_PORT = Number(env("RMS_EDGE_RTMP_PORT"));
const RTMPS_PORT = Number(env("RMS_EDGE_RTMPS_PORT"));
const PREFIX = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Media/mediaservices/${ACCT}`;
const LRO_LIMIT_MS = 20000;
const scheme = INSECURE ? "http" : "https";
const unique = (p) => `${p}${randomUUID().replace(/-/g, "").slice(0, 10)}`;

/** TokenCredential: POST {endpoint}/auth/token {"subscriptionId","apiKey"} -> raw JWT text; exp from the JWT. */
class RmsApiKeyCredential {
  constructor(endpoint, subscriptionId, apiKey) {
    Object.assign(this, { endpoint, subscriptionId, apiKey, calls: 0 });
    this.http = createDefaultHttpClient();
  }
  async getToken() {
    this.calls++;
    const req = createPipelineRequest({
      url: `${this.endpoint}/auth/token`,
      method: "POST",
      headers: createHttpHeaders({ "Content-Type": "application/json" }),
      body: JSON.stringify({ subscriptionId: this.subscriptionId, apiKey: this.apiKey }),
      allowInsecureConnection: INSECURE,
    });
    const res = await this.http.sendRequest(req);
    if (res.status !== 200) throw new Error(`/auth/token answered ${res.status}: ${res.bodyAsText}`);
    const token = res.bodyAsText.trim();
    assert.equal(token.split(".").length, 3, `/auth/token did not return a raw JWT: ${token.slice(0, 80)}`);
    let exp;
    try {
      exp = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString()).exp;
    } catch {
      /* fall through */
    }
    return { token, expiresOnTimestamp: (exp ?? Math.floor(Date.now() / 1000) + 3600) * 1000 };
  }
}

/**
 * Plain http: @azure/core-rest-pipeline's bearerTokenAuthenticationPolicy throws "Bearer token authentication
 * is not permitted for non-TLS protected (non-https) URLs" for every non-https URL and has no opt-out
 * (checked in 1.24.0; `allowInsecureConnection` only relaxes the node HTTP client's own refusal). So for http
 * we (1) pass `allowInsecureConnection: true` (a supported ServiceClientOptions field, applied by core-client
 * to every operation request, LRO polls included), and (2) use the public Pipeline API to swap the SDK's bearer
 * policy for this minimal one that sets the same header from the same TokenCredential (token cached until
 * 5 minutes before exp).
 */
function httpBearerPolicy(credential) {
  let cached;
  return {
    name: "rmsHttpBearerPolicy",
    async sendRequest(request, next) {
      if (!cached || cached.expiresOnTimestamp - Date.now() < 300000) cached = await credential.getToken([]);
      request.headers.set("Authorization", `Bearer ${cached.token}`);
      return next(request);
    },
  };
}

function makeClient(credential = new RmsApiKeyCredential(BASE, SUB, KEY)) {
  const client = new AzureMediaServices(credential, SUB, {
    endpoint: BASE,
    ...(INSECURE ? { allowInsecureConnection: true } : {}),
  });
  if (INSECURE) {
    client.pipeline.removePolicy({ name: bearerTokenAuthenticationPolicyName });
    client.pipeline.addPolicy(httpBearerPolicy(credential), { phase: "Sign" });
  }
  client.rmsCredential = credential;
  return client;
}

/** An action the SDK has no method for (getStatus, 2022-11-01), through the SDK's pipeline. */
async function rawPost(client, path) {
  const req = createPipelineRequest({
    url: `${BASE}${path}?api-version=2022-11-01`,
    method: "POST",
    allowInsecureConnection: INSECURE,
  });
  return client.sendRequest(req);
}

async function timed(what, promise) {
  const t0 = Date.now();
  const result = await promise;
  const took = Date.now() - t0;
  assert.ok(took < LRO_LIMIT_MS, `${what} took ${took} ms`);
  return result;
}

async function expectStatus(promise, statusCode, what) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.statusCode, statusCode, `${what}: ${e.message}`);
    return true;
  });
}

const quickstartEvent = () => ({
  location: "West Europe",
  description: "",
  input: {
    streamingProtocol: "RTMP",
    keyFrameIntervalDuration: "PT2S",
    accessControl: { ip: { allow: [{ name: "AllowAll", address: "0.0.0.0", subnetPrefixLength: 0 }] } },
  },
  encoding: { encodingType: "PassthroughStandard" },
  streamOptions: ["Default"],
});

function checkIngest(ev) {
  assert.ok(ev.input.accessToken, "input.accessToken missing");
  const eps = ev.input.endpoints ?? [];
  assert.ok(eps.length >= 2, `expected RTMP and RTMPS endpoints, got ${JSON.stringify(eps)}`);
  const rtmp = new URL(eps[0].url);
  const rtmps = new URL(eps[1].url);
  assert.equal(eps[0].protocol.toUpperCase(), "RTMP");
  assert.equal(rtmp.protocol, "rtmp:");
  assert.equal(rtmps.protocol, "rtmps:");
  assert.equal(rtmp.hostname, "127.0.0.1");
  assert.equal(Number(rtmp.port), RTMP_PORT);
  assert.equal(Number(rtmps.port), RTMPS_PORT);
  assert.ok(!eps[0].url.includes(ev.input.accessToken), "RTMP key must not be part of the URL");
}

async function cleanupEvent(client, name) {
  try {
    await client.liveEvents.beginStopAndWait(RG, ACCT, name, { removeOutputsOnStop: true });
  } catch {}
  try {
    await client.liveEvents.beginDeleteAndWait(RG, ACCT, name);
  } catch {}
}

test(`quickstart 12 steps over ${scheme}`, async () => {
  const client = makeClient();
  const event = unique(`js-${scheme}-`);
  const asset = unique("Video-");
  const output = unique("out");
  const locator = unique("loc-");
  try {
    // 1. Create live event (LRO) -> Stopped, ingest URLs + key in the response.
    const created = await timed("create", client.liveEvents.beginCreateAndWait(RG, ACCT, event, quickstartEvent()));
    assert.equal(created.name, event);
    assert.equal(created.provisioningState, "Succeeded");
    assert.equal(created.resourceState, "Stopped");
    checkIngest(created);

    // 2. Asset (no storageAccountName: default storage).
    const a = await client.assets.createOrUpdate(RG, ACCT, asset, {});
    assert.equal(a.name, asset);
    assert.match(a.assetId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);

    // 3. Live output (LRO).
    const lo = await timed("create output", client.liveOutputs.beginCreateAndWait(RG, ACCT, event, output, {
      assetName: asset,
      archiveWindowLength: "PT5M",
    }));
    assert.equal(lo.assetName, asset);
    assert.equal(lo.archiveWindowLength, "PT5M");
    assert.equal(lo.provisioningState, "Succeeded");

    // 4. Start (LRO) -> Running as soon as the poller completes.
    await timed("start", client.liveEvents.beginStartAndWait(RG, ACCT, event));
    const started = await client.liveEvents.get(RG, ACCT, event);
    assert.equal(started.resourceState, "Running", "beginStartAndWait resolved before the event was Running");

    // 5. getStatus: 200 synchronously.
    const st = await rawPost(client, `${PREFIX}/liveEvents/${event}/getStatus`);
    assert.equal(st.status, 200, st.bodyAsText);
    const status = JSON.parse(st.bodyAsText);
    assert.equal(status.value?.[0]?.state, "Running", st.bodyAsText);

    // 6. Encoder settings: endpoints[0] RTMP, endpoints[1] RTMPS, accessToken unchanged.
    checkIngest(started);
    assert.equal(started.input.accessToken, created.input.accessToken);

    // 7. Streaming locator (201).
    const loc = await client.streamingLocators.create(RG, ACCT, locator, {
      assetName: asset,
      streamingPolicyName: "Predefined_ClearStreamingOnly",
    });
    const id = loc.streamingLocatorId;
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);

    // 8. listPaths.
    const lp = await client.streamingLocators.listPaths(RG, ACCT, locator);
    const byProto = Object.fromEntries(lp.streamingPaths.map((p) => [p.streamingProtocol, p.paths]));
    const esc = id.replace(/-/g, "\\-");
    assert.ok(byProto.Hls?.some((p) => new RegExp(`^/${esc}/[^/]+\\.ism/manifest\\(format=m3u8-cmaf\\)$`).test(p)),
      JSON.stringify(lp));
    assert.ok(byProto.Dash?.some((p) => new RegExp(`^/${esc}/[^/]+\\.ism/manifest\\(format=mpd-time-cmaf\\)$`).test(p)),
      JSON.stringify(lp));

    // 9. Streaming endpoint hostName.
    const se = await client.streamingEndpoints.get(RG, ACCT, "default");
    assert.equal(se.hostName, PUBLIC_HOST);
    assert.equal(se.resourceState, "Running");

    // 11. Stop (LRO; body {}) -> Stopped, outputs removed.
    await timed("stop", client.liveEvents.beginStopAndWait(RG, ACCT, event, {}));
    assert.equal((await client.liveEvents.get(RG, ACCT, event)).resourceState, "Stopped");
    const outs = [];
    for await (const o of client.liveOutputs.list(RG, ACCT, event)) outs.push(o.name);
    assert.deepEqual(outs, [], "stop must delete the live outputs");
    assert.equal((await client.assets.get(RG, ACCT, asset)).name, asset);

    // 12. Delete (LRO) -> 404 afterwards.
    await timed("delete", client.liveEvents.beginDeleteAndWait(RG, ACCT, event));
    await expectStatus(client.liveEvents.get(RG, ACCT, event), 404, "get after delete");

    assert.equal(client.rmsCredential.calls, 1, "the token should be fetched once and cached");
  } finally {
    await cleanupEvent(client, event);
  }
});

test(`allocate / reset / errors / asset list over ${scheme}`, async () => {
  const client = makeClient();
  const event = unique(`jsar-${scheme}-`);
  const asset = unique("jsar-asset-");
  try {
    await timed("create", client.liveEvents.beginCreateAndWait(RG, ACCT, event, quickstartEvent()));
    await timed("allocate", client.liveEvents.beginAllocateAndWait(RG, ACCT, event));
    assert.equal((await client.liveEvents.get(RG, ACCT, event)).resourceState, "StandBy");
    await timed("start", client.liveEvents.beginStartAndWait(RG, ACCT, event));
    assert.equal((await client.liveEvents.get(RG, ACCT, event)).resourceState, "Running");
    await client.assets.createOrUpdate(RG, ACCT, asset, {});
    await client.liveOutputs.beginCreateAndWait(RG, ACCT, event, "o1", { assetName: asset, archiveWindowLength: "PT5M" });
    await expectStatus(client.liveEvents.beginDeleteAndWait(RG, ACCT, event), 409, "delete while Running");
    await timed("reset", client.liveEvents.beginResetAndWait(RG, ACCT, event));
    assert.equal((await client.liveEvents.get(RG, ACCT, event)).resourceState, "Running");
    const outs = [];
    for await (const o of client.liveOutputs.list(RG, ACCT, event)) outs.push(o.name);
    assert.deepEqual(outs, [], "reset must delete the live outputs");
    await timed("stop", client.liveEvents.beginStopAndWait(RG, ACCT, event, { removeOutputsOnStop: true }));
    await timed("delete", client.liveEvents.beginDeleteAndWait(RG, ACCT, event));

    // Errors.
    await expectStatus(client.liveEvents.get(RG, ACCT, unique("missing")), 404, "missing event");
    await client.liveEvents.beginDeleteAndWait(RG, ACCT, unique("missing")); // 204 -> done
    const bad = makeClient({ getToken: async () => ({ token: "bogus", expiresOnTimestamp: Date.now() + 3600000 }) });
    await expectStatus(bad.streamingEndpoints.get(RG, ACCT, "default"), 401, "bad token");
    const loc = unique("jsloc-");
    await client.streamingLocators.create(RG, ACCT, loc, { assetName: asset, streamingPolicyName: "Predefined_ClearStreamingOnly" });
    await expectStatus(
      client.streamingLocators.create(RG, ACCT, loc, { assetName: asset, streamingPolicyName: "Predefined_ClearStreamingOnly" }),
      409, "duplicate locator");

    // Asset listing through the pager.
    const names = [];
    for await (const x of client.assets.list(RG, ACCT)) names.push(x.name);
    assert.ok(names.includes(asset), `asset ${asset} not listed`);
  } finally {
    await cleanupEvent(client, event);
  }
});
