// Scenarios run inside the browser page with the official JS SDK, against the server on another origin.
// Each returns plain data; the Node driver (sdk.mjs) asserts on it. Bundled by build.mjs with esbuild.
import { Client } from "@langchain/langgraph-sdk";

function client(apiUrl) {
  return new Client({ apiUrl, apiKey: null });
}

const userMessage = (content) => ({ messages: [{ role: "user", content }] });

function isAiChunk(msg) {
  return msg && (msg.type === "AIMessageChunk" || msg.type === "ai");
}

// A streamed agent run: tokens (with arrival times), the tool call and its result.
async function streamRun(apiUrl) {
  const sdk = client(apiUrl);
  const thread = await sdk.threads.create();
  const tokens = [];
  const toolCalls = [];
  const toolResults = [];
  const events = [];
  let runId = null;
  for await (const chunk of sdk.runs.stream(thread.thread_id, "typing", {
    input: userMessage("what is the weather in sf?"),
    streamMode: ["messages-tuple", "updates"],
  })) {
    events.push(chunk.event);
    if (chunk.event === "metadata") runId = chunk.data.run_id;
    if (chunk.event !== "messages") continue;
    const [msg] = chunk.data;
    if (isAiChunk(msg) && typeof msg.content === "string" && msg.content) {
      tokens.push({ text: msg.content, at: performance.now() });
    }
    for (const tc of msg.tool_call_chunks ?? []) if (tc.name) toolCalls.push(tc.name);
    if (msg.type === "tool") toolResults.push({ name: msg.name, content: msg.content });
  }
  const run = await sdk.runs.get(thread.thread_id, runId);
  const state = await sdk.threads.getState(thread.thread_id);
  return {
    threadId: thread.thread_id,
    runStatus: run.status,
    events: [...new Set(events)],
    tokens,
    toolCalls,
    toolResults,
    finalMessage: state.values.messages.at(-1).content,
  };
}

// Threads created with a tag in their metadata and found again with search.
async function listThreads(apiUrl) {
  const sdk = client(apiUrl);
  const tag = crypto.randomUUID();
  const created = [];
  for (let i = 0; i < 3; i++) {
    created.push((await sdk.threads.create({ metadata: { browser_suite: tag, n: i } })).thread_id);
  }
  const found = await sdk.threads.search({ metadata: { browser_suite: tag }, limit: 10 });
  const firstPage = await sdk.threads.search({ metadata: { browser_suite: tag }, limit: 2 });
  return {
    created,
    found: found.map((t) => t.thread_id),
    foundMetadata: found.map((t) => t.metadata),
    firstPageSize: firstPage.length,
  };
}

// A run that stops at interrupt(), the thread waiting, then a resume that finishes it.
async function interruptResume(apiUrl) {
  const sdk = client(apiUrl);
  const thread = await sdk.threads.create();
  const interrupts = [];
  for await (const chunk of sdk.runs.stream(thread.thread_id, "interrupt", {
    input: { request: "deploy" },
    streamMode: "updates",
  })) {
    if (chunk.event === "updates" && chunk.data.__interrupt__) interrupts.push(...chunk.data.__interrupt__);
  }
  const waiting = await sdk.threads.get(thread.thread_id);
  let finalValues = null;
  for await (const chunk of sdk.runs.stream(thread.thread_id, "interrupt", {
    command: { resume: "approved" },
    streamMode: "values",
  })) {
    if (chunk.event === "values") finalValues = chunk.data;
  }
  const done = await sdk.threads.get(thread.thread_id);
  return {
    interrupts,
    statusWhileWaiting: waiting.status,
    pendingInterrupts: Object.values(waiting.interrupts ?? {}).flat(),
    finalValues,
    statusAfter: done.status,
  };
}

// A long streamed run cancelled after a few tokens: the stream ends early and the run is interrupted.
async function cancelRun(apiUrl) {
  const sdk = client(apiUrl);
  const thread = await sdk.threads.create();
  let runId = null;
  let tokens = 0;
  let cancelled = false;
  for await (const chunk of sdk.runs.stream(thread.thread_id, "typing_long", {
    input: userMessage("talk for a while"),
    streamMode: "messages-tuple",
  })) {
    if (chunk.event === "metadata") runId = chunk.data.run_id;
    if (chunk.event === "messages" && isAiChunk(chunk.data[0]) && chunk.data[0].content) {
      tokens += 1;
      if (tokens === 3 && !cancelled) {
        cancelled = true;
        await sdk.runs.cancel(thread.thread_id, runId, false, "interrupt");
      }
    }
  }
  const run = await sdk.runs.get(thread.thread_id, runId);
  return { tokens, runStatus: run.status };
}

// A background run joined twice: a first join read part of the way, then a second join with Last-Event-ID.
async function joinWithLastEventId(apiUrl) {
  const sdk = client(apiUrl);
  const thread = await sdk.threads.create();
  const run = await sdk.runs.create(thread.thread_id, "typing_long", {
    input: userMessage("talk for a while"),
    streamMode: ["messages-tuple"],
    streamResumable: true,
  });
  const first = [];
  let lastEventId = null;
  const controller = new AbortController();
  for await (const chunk of sdk.runs.joinStream(thread.thread_id, run.run_id, { signal: controller.signal })) {
    if (chunk.event === "messages" && isAiChunk(chunk.data[0]) && chunk.data[0].content) {
      first.push(chunk.data[0].content);
      lastEventId = chunk.id;
      if (first.length === 5) break;
    }
  }
  controller.abort();
  const second = [];
  for await (const chunk of sdk.runs.joinStream(thread.thread_id, run.run_id, { lastEventId })) {
    if (chunk.event === "messages" && isAiChunk(chunk.data[0]) && chunk.data[0].content) {
      second.push(chunk.data[0].content);
    }
  }
  const finished = await sdk.runs.get(thread.thread_id, run.run_id);
  return { first, second, lastEventId, runStatus: finished.status };
}

// Plain fetch() from this origin: preflighted requests, exposed and unexposed headers, a disallowed origin.
async function corsFetch(apiUrl, restrictedUrl) {
  const out = {};
  // Authorization + JSON body: needs a preflight; x-pagination-total must be readable.
  const search = await fetch(`${apiUrl}/threads/search`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: "Bearer not-checked", "X-Custom": "1" },
    body: JSON.stringify({ limit: 1 }),
  });
  out.search = { status: search.status, paginationTotal: search.headers.get("x-pagination-total") };
  // A streaming POST: content-location is exposed, location is not (the reference exposes the same three).
  const thread = await (await fetch(`${apiUrl}/threads`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: "{}",
  })).json();
  const stream = await fetch(`${apiUrl}/threads/${thread.thread_id}/runs/stream`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ assistant_id: "agent", input: userMessage("hi"), stream_mode: "values" }),
  });
  const body = await stream.text();
  out.stream = {
    status: stream.status,
    contentType: stream.headers.get("content-type"),
    contentLocation: stream.headers.get("content-location"),
    location: stream.headers.get("location"),
    hasValuesEvent: body.includes("event: values"),
  };
  // PATCH and DELETE are never simple requests: both go through a preflight.
  const patched = await fetch(`${apiUrl}/threads/${thread.thread_id}`, {
    method: "PATCH", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ metadata: { k: "v" } }),
  });
  out.patch = { status: patched.status, metadata: (await patched.json()).metadata };
  const deleted = await fetch(`${apiUrl}/threads/${thread.thread_id}`, { method: "DELETE" });
  out.delete = { status: deleted.status };
  // A server that only allows another origin: the browser must refuse to hand over the answers.
  if (restrictedUrl) {
    out.restricted = {};
    for (const [name, init] of [
      ["simpleGet", {}],
      ["preflighted", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" }],
    ]) {
      const path = name === "simpleGet" ? "/ok" : "/threads/search";
      try {
        const res = await fetch(`${restrictedUrl}${path}`, init);
        out.restricted[name] = `readable (${res.status})`;
      } catch (err) {
        out.restricted[name] = `blocked: ${err.name}`;
      }
    }
  }
  return out;
}

// A server with authentication on: preflights pass without a token, the 401 is readable, a token works.
async function withAuth(apiUrl, _restricted, token) {
  const anonymous = await fetch(`${apiUrl}/threads`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: "{}",
  });
  const out = { anonymousStatus: anonymous.status, anonymousBody: await anonymous.json() };
  let sdkError = null;
  try {
    await client(apiUrl).threads.search();
  } catch (err) {
    sdkError = String(err.message ?? err);
  }
  out.anonymousSdkError = sdkError;
  const sdk = new Client({ apiUrl, apiKey: null, defaultHeaders: { Authorization: `Bearer ${token}` } });
  const thread = await sdk.threads.create({ metadata: { via: "browser" } });
  let text = "";
  for await (const chunk of sdk.runs.stream(thread.thread_id, "typing", {
    input: userMessage("weather?"),
    streamMode: "messages-tuple",
  })) {
    if (chunk.event === "messages" && isAiChunk(chunk.data[0])) text += chunk.data[0].content;
  }
  const mine = await sdk.threads.search({ metadata: { via: "browser" } });
  return { ...out, text, found: mine.map((t) => t.thread_id), threadId: thread.thread_id };
}

window.sdkTests = { withAuth, streamRun, listThreads, interruptResume, cancelRun, joinWithLastEventId, corsFetch };
document.getElementById("ready").textContent = "ready";
