// Drives the SDK test page (served from another origin than the API) in headless Chromium.
// usage: API_URL=... PAGE_URL=... [RESTRICTED_URL=...] node sdk.mjs <scenario>
import assert from "node:assert/strict";
import { env, withBrowser } from "./lib.mjs";

const API_URL = env("API_URL");
const PAGE_URL = env("PAGE_URL");
const RESTRICTED_URL = process.env.RESTRICTED_URL ?? "";
const TOKEN = process.env.TOKEN ?? "";
const ANSWER = ["The ", "weather ", "in ", "sf ", "is ", "sunny."];
const LONG = [...Array.from({ length: 39 }, (_, i) => `word${i} `), "end."];

async function run(page, scenario) {
  await page.goto(PAGE_URL);
  await page.waitForFunction(() => document.getElementById("ready")?.textContent === "ready");
  assert.notEqual(new URL(PAGE_URL).origin, new URL(API_URL).origin, "the page must be on another origin");
  return page.evaluate(([name, api, restricted, token]) => window.sdkTests[name](api, restricted, token), [
    scenario, API_URL, RESTRICTED_URL, TOKEN,
  ]);
}

const checks = {
  async withAuth(page) {
    const r = await run(page, "withAuth");
    assert.equal(r.anonymousStatus, 401, "the page reads the 401: preflight passed, CORS headers on the error");
    assert.ok(r.anonymousBody.detail, "401 body has a detail");
    assert.match(r.anonymousSdkError ?? "", /401/);
    assert.equal(r.text, ANSWER.join(""));
    assert.deepEqual(r.found, [r.threadId]);
  },

  async streamRun(page) {
    const r = await run(page, "streamRun");
    assert.equal(r.runStatus, "success");
    assert.deepEqual(r.tokens.map((t) => t.text), ANSWER);
    assert.deepEqual(r.toolCalls, ["get_weather"]);
    assert.deepEqual(r.toolResults, [{ name: "get_weather", content: "It's sunny in sf" }]);
    assert.ok(r.events.includes("metadata") && r.events.includes("updates"), `events: ${r.events}`);
    assert.equal(r.finalMessage, ANSWER.join(""));
    // The model waits between tokens; tokens buffered by the server or the browser would all arrive at once.
    const spread = r.tokens.at(-1).at - r.tokens[0].at;
    const distinct = new Set(r.tokens.map((t) => t.at)).size;
    console.log(`tokens arrived over ${spread.toFixed(0)} ms at ${distinct} distinct times`);
    assert.ok(r.tokens.at(-1).at > r.tokens[0].at, "first and last token arrived at the same time");
    assert.ok(distinct > ANSWER.length / 2, `tokens arrived in ${distinct} batches, not one by one`);
  },

  async listThreads(page) {
    const r = await run(page, "listThreads");
    assert.deepEqual([...r.found].sort(), [...r.created].sort());
    assert.ok(r.foundMetadata.every((m) => typeof m.browser_suite === "string"));
    assert.equal(r.firstPageSize, 2);
  },

  async interruptResume(page) {
    const r = await run(page, "interruptResume");
    assert.equal(r.interrupts.length, 1);
    assert.deepEqual(r.interrupts[0].value, { question: "approve deploy?" });
    assert.equal(r.statusWhileWaiting, "interrupted");
    assert.equal(r.pendingInterrupts.length, 1);
    assert.equal(r.finalValues.result, "deploy -> approved");
    assert.equal(r.statusAfter, "idle");
  },

  async cancelRun(page) {
    const r = await run(page, "cancelRun");
    assert.equal(r.runStatus, "interrupted");
    assert.ok(r.tokens >= 3 && r.tokens < LONG.length, `tokens streamed: ${r.tokens}`);
  },

  async joinWithLastEventId(page) {
    const r = await run(page, "joinWithLastEventId");
    assert.equal(r.runStatus, "success");
    assert.ok(r.lastEventId, "resumable events carry ids");
    assert.deepEqual(r.first, LONG.slice(0, 5));
    assert.deepEqual([...r.first, ...r.second], LONG, "no token lost or repeated across the two joins");
  },

  async corsFetch(page) {
    // Watch the preflights the browser sends (DevTools protocol: they are their own requests there).
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Network.enable");
    const preflights = new Map();
    cdp.on("Network.requestWillBeSent", (e) => {
      if (e.request.method === "OPTIONS") preflights.set(e.requestId, { url: e.request.url, headers: e.request.headers });
    });
    cdp.on("Network.responseReceived", (e) => {
      const p = preflights.get(e.requestId);
      if (p) Object.assign(p, { status: e.response.status, responseHeaders: e.response.headers });
    });
    const r = await run(page, "corsFetch");
    assert.equal(r.search.status, 200);
    assert.match(r.search.paginationTotal ?? "", /^\d+$/, "x-pagination-total is exposed to the page");
    assert.equal(r.stream.status, 200);
    assert.match(r.stream.contentType, /^text\/event-stream/);
    assert.match(r.stream.contentLocation ?? "", /^\/threads\/[0-9a-f-]+\/runs\/[0-9a-f-]+$/);
    assert.equal(r.stream.location, null, "location is not in the exposed headers");
    assert.ok(r.stream.hasValuesEvent);
    assert.equal(r.patch.status, 200);
    assert.equal(r.patch.metadata.k, "v");
    assert.equal(r.delete.status, 204);
    if (RESTRICTED_URL) {
      assert.deepEqual(r.restricted, { simpleGet: "blocked: TypeError", preflighted: "blocked: TypeError" });
    }
    const seen = [...preflights.values()];
    const lower = (h) => Object.fromEntries(Object.entries(h ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    const search = seen.find((p) => p.url === `${API_URL}/threads/search`);
    console.log(`preflights seen: ${seen.length}`);
    assert.ok(search, `no preflight for /threads/search among ${seen.map((p) => p.url).join(", ")}`);
    const req = lower(search.headers);
    const res = lower(search.responseHeaders);
    assert.equal(req["access-control-request-method"], "POST");
    assert.match(req["access-control-request-headers"], /authorization/);
    assert.equal(search.status, 200);
    assert.equal(res["access-control-allow-origin"], "*");
    assert.match(res["access-control-allow-headers"], /authorization/);
    const streamPreflight = seen.find((p) => /\/runs\/stream$/.test(p.url));
    assert.ok(streamPreflight, "the streaming POST was preflighted");
    assert.equal(streamPreflight.status, 200);
  },
};

const scenario = process.argv[2];
if (!checks[scenario]) {
  console.error(`unknown scenario ${scenario}; one of ${Object.keys(checks).join(", ")}`);
  process.exit(2);
}
await withBrowser(`sdk-${scenario}`, (page) => checks[scenario](page));
