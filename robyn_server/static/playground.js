// Playground: a small chat client for this server that uses only the public LangGraph Server API.
//
//   POST /assistants/search                      pick an assistant
//   POST /threads, POST /threads/search          start a thread, list threads to reopen
//   GET  /threads/{id}/state, GET /threads/{id}  show a thread, notice a pending interrupt
//   POST /threads/{id}/runs/stream               run, streaming messages-tuple + updates (resumable)
//   POST /threads/{id}/runs/{run}/cancel         cancel the running run
//   GET  /threads/{id}/runs/{run}/stream         join a running run again (Last-Event-ID)
//
// With "Protocol v2" chosen (the default) runs go through the thread-centric protocol instead:
//   POST /threads/{id}/commands                  run.start, input.respond
//   POST /threads/{id}/stream/events             the thread's events from just before the run (`since`)
//
// No framework and no build step: plain DOM code, fetch() and a small Server-Sent-Events parser.

const STREAM_MODES = ["messages-tuple", "updates", "values"];
const STORAGE_KEY = "robyn-playground";
const INFLIGHT = new Set(["pending", "running"]);
const V2_CHANNELS = ["messages", "values", "lifecycle", "input"];
const V2_RUN_ENDS = new Set(["completed", "failed", "interrupted"]);

const $ = (id) => document.getElementById(id);
const ui = {
  apiUrl: $("api-url"), token: $("token"), connection: $("connection"),
  assistant: $("assistant"), transport: $("transport"), newThread: $("new-thread"), threads: $("threads"), refreshThreads: $("refresh-threads"),
  status: $("status"), transcript: $("transcript"),
  interrupt: $("interrupt"), interruptValue: $("interrupt-value"), interruptAnswer: $("interrupt-answer"),
  interruptReply: $("interrupt-reply"), interruptApprove: $("interrupt-approve"),
  composer: $("composer"), message: $("message"), send: $("send"), cancel: $("cancel"),
};

const state = {
  threadId: null,
  runId: null,
  lastEventId: null,
  controller: null,        // AbortController of the open stream
  interrupts: [],          // pending interrupts of the current thread
  lastValues: null,        // last `values` event of the current run
  bubbles: new Map(),      // message id -> rendered element
  toolCalls: new Map(),    // "<message id>:<index>" -> {name, args, el}
  completeIds: new Set(),  // messages already shown complete (from thread state)
  commandId: 0,            // protocol v2: id of the last command sent
  v2Message: null,         // protocol v2: id of the message being streamed, and whether it is shown already
  v2Skip: false,
  v2Seq: null,             // protocol v2: seq of the last event seen
};

// ------------------------------------------------------------------ settings

function loadSettings() {
  try { return JSON.parse(localStorage.getItem(STORAGE_KEY) || "{}"); } catch { return {}; }
}

// The token is kept for this tab only (sessionStorage), never written to localStorage.
function loadToken() {
  return sessionStorage.getItem(`${STORAGE_KEY}-token`) || "";
}

function saveToken(token) {
  sessionStorage.setItem(`${STORAGE_KEY}-token`, token);
}

function saveSettings(patch) {
  localStorage.setItem(STORAGE_KEY, JSON.stringify({ ...loadSettings(), ...patch }));
}

function apiBase() {
  return (ui.apiUrl.value.trim() || location.origin).replace(/\/+$/, "");
}

// ------------------------------------------------------------------ HTTP

function headers(extra = {}) {
  const h = { "Content-Type": "application/json", ...extra };
  const token = ui.token.value.trim();
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

async function api(method, path, body) {
  const res = await fetch(apiBase() + path, {
    method, headers: headers(), body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await errorDetail(res)}`);
  return res.status === 204 ? null : res.json();
}

async function errorDetail(res) {
  const text = await res.text();
  try { return JSON.parse(text).detail ?? text; } catch { return text; }
}

// Reads a text/event-stream body and yields {event, data, id} for every event.
async function* readEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = { event: "message", data: "", id: null };
      const data = [];
      for (const line of block.split("\n")) {
        if (!line || line.startsWith(":")) continue;  // comments are heartbeats
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event.event = val;
        else if (field === "data") data.push(val);
        else if (field === "id") event.id = val;
      }
      if (data.length === 0 && event.id === null) continue;
      const raw = data.join("\n");
      try { event.data = raw ? JSON.parse(raw) : null; } catch { event.data = raw; }
      yield event;
    }
  }
}

// ------------------------------------------------------------------ rendering

function setStatus(text, isError = false) {
  ui.status.textContent = text;
  ui.status.classList.toggle("error", isError);
}

function scrollDown() {
  ui.transcript.scrollTop = ui.transcript.scrollHeight;
}

function addBubble(role, text = "", messageId = null) {
  const li = document.createElement("li");
  li.className = `msg ${role}`;
  li.dataset.role = role;
  if (messageId) li.dataset.messageId = messageId;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = { human: "you", ai: "assistant", tool: "tool result" }[role] ?? role;
  const body = document.createElement("div");
  body.className = "text";
  body.textContent = text;
  li.append(who, body);
  ui.transcript.append(li);
  scrollDown();
  return li;
}

function notice(text, role = "notice") {
  return addBubble(role, text);
}

function textOf(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((b) => (typeof b === "string" ? b : b.text ?? "")).join("");
  return "";
}

function showToolCall(messageId, bubble, index, name, argsText) {
  const key = `${messageId}:${index}`;
  let call = state.toolCalls.get(key);
  if (!call) {
    const el = document.createElement("div");
    el.className = "tool-call";
    bubble.append(el);
    call = { name: "", args: "", el };
    state.toolCalls.set(key, call);
  }
  if (name) call.name += name;
  if (argsText) call.args += argsText;
  call.el.textContent = `tool call: ${call.name}(${call.args})`;
}

// One message, complete (from thread state).
function renderMessage(msg) {
  const role = msg.type === "human" ? "human" : msg.type === "tool" ? "tool" : msg.type === "ai" ? "ai" : msg.type;
  if (role === "tool") {
    const bubble = addBubble("tool", `${msg.name ?? "tool"} → ${textOf(msg.content)}`, msg.id);
    state.bubbles.set(msg.id, bubble);
  } else {
    const bubble = addBubble(role, textOf(msg.content), msg.id);
    state.bubbles.set(msg.id, bubble);
    (msg.tool_calls ?? []).forEach((tc, i) => showToolCall(msg.id, bubble, i, tc.name, JSON.stringify(tc.args)));
  }
  if (msg.id) state.completeIds.add(msg.id);
}

// One `messages` event (messages-tuple mode): [message chunk, metadata].
function renderChunk([msg]) {
  if (!msg || (msg.id && state.completeIds.has(msg.id))) return;
  if (msg.type === "tool") {
    renderMessage(msg);
    return;
  }
  if (msg.type === "human") return;  // shown when sent
  let bubble = state.bubbles.get(msg.id);
  if (!bubble) {
    bubble = addBubble("ai", "", msg.id);
    bubble.classList.add("streaming");
    state.bubbles.set(msg.id, bubble);
  }
  bubble.querySelector(".text").textContent += textOf(msg.content);
  for (const tc of msg.tool_call_chunks ?? []) showToolCall(msg.id, bubble, tc.index ?? 0, tc.name, tc.args);
  if (msg.chunk_position === "last" || msg.type === "ai") bubble.classList.remove("streaming");
  scrollDown();
}

function clearTranscript() {
  ui.transcript.replaceChildren();
  state.bubbles.clear();
  state.toolCalls.clear();
  state.completeIds.clear();
}

function showInterrupts(interrupts) {
  state.interrupts = interrupts ?? [];
  ui.interrupt.hidden = state.interrupts.length === 0;
  ui.interruptValue.textContent = state.interrupts
    .map((i) => (typeof i.value === "string" ? i.value : JSON.stringify(i.value, null, 2)))
    .join("\n\n");
  if (state.interrupts.length) ui.interruptAnswer.focus();
}

function setRunning(running) {
  ui.send.disabled = running;
  ui.cancel.disabled = !running;
  ui.interruptApprove.disabled = running;
  ui.interruptReply.disabled = running;
  if (!running) {
    for (const bubble of ui.transcript.querySelectorAll(".streaming")) bubble.classList.remove("streaming");
  }
}

// ------------------------------------------------------------------ assistants and threads

async function loadAssistants() {
  const assistants = await api("POST", "/assistants/search", { limit: 100 });
  const chosen = loadSettings().assistantId;
  ui.assistant.replaceChildren(...assistants.map((a) => {
    const option = new Option(a.name === a.graph_id ? a.graph_id : `${a.name} (${a.graph_id})`, a.assistant_id);
    option.dataset.graphId = a.graph_id;
    return option;
  }));
  if (assistants.some((a) => a.assistant_id === chosen)) ui.assistant.value = chosen;
}

function firstHumanText(thread) {
  const msgs = thread.values?.messages;
  const human = Array.isArray(msgs) ? msgs.find((m) => m.type === "human") : null;
  return human ? textOf(human.content).slice(0, 40) : "";
}

async function loadThreads() {
  const threads = await api("POST", "/threads/search", { limit: 20, sort_by: "updated_at", sort_order: "desc" });
  ui.threads.replaceChildren(...threads.map((t) => {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.threadId = t.thread_id;
    button.classList.toggle("current", t.thread_id === state.threadId);
    button.textContent = firstHumanText(t) || `thread …${t.thread_id.slice(-8)}`;
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = `…${t.thread_id.slice(-8)} · ${t.status} · ${t.metadata?.graph_id ?? "no runs"}`;
    button.append(meta);
    button.addEventListener("click", () => openThread(t.thread_id).catch(fail));
    li.append(button);
    return li;
  }));
}

async function newThread() {
  const thread = await api("POST", "/threads", {});
  await openThread(thread.thread_id);
  await loadThreads();
  return thread.thread_id;
}

async function openThread(threadId) {
  state.threadId = threadId;
  saveSettings({ threadId });
  clearTranscript();
  showInterrupts([]);
  const [thread, threadState] = await Promise.all([
    api("GET", `/threads/${threadId}`),
    api("GET", `/threads/${threadId}/state`),
  ]);
  renderState(threadState.values);
  showInterrupts(Object.values(thread.interrupts ?? {}).flat());
  for (const b of ui.threads.querySelectorAll("button[data-thread-id]")) {
    b.classList.toggle("current", b.dataset.threadId === threadId);
  }
  setStatus(`Thread ${threadId} · ${thread.status}`);
  return thread;
}

function renderState(values) {
  const messages = values?.messages;
  if (Array.isArray(messages)) messages.forEach(renderMessage);
  else if (values && Object.keys(values).length) addBubble("values", JSON.stringify(values, null, 2));
}

// ------------------------------------------------------------------ runs

async function startRun(body) {
  if (!state.threadId) await newThread();
  const threadId = state.threadId;
  const payload = {
    assistant_id: ui.assistant.value,
    stream_mode: STREAM_MODES,
    stream_resumable: true,      // lets a reloaded page join the run again
    on_disconnect: "continue",   // closing the tab does not stop the run
    ...body,
  };
  await followStream(threadId, `/threads/${threadId}/runs/stream`, { method: "POST", body: JSON.stringify(payload) });
}

// Join a run that is already going: after `lastEventId`, or from its first event with "-".
async function joinRun(threadId, runId, lastEventId) {
  state.runId = runId;
  const extra = lastEventId ? { "Last-Event-ID": lastEventId } : {};
  await followStream(threadId, `/threads/${threadId}/runs/${runId}/stream`, { method: "GET", extraHeaders: extra });
}

async function followStream(threadId, path, { method, body, extraHeaders = {} }) {
  const controller = new AbortController();
  state.controller = controller;
  state.lastValues = null;
  ui.transcript.dataset.lastRunStatus = "";
  setRunning(true);
  let retries = 0;
  try {
    let res = await fetch(apiBase() + path, { method, body, headers: headers(extraHeaders), signal: controller.signal });
    for (;;) {
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await errorDetail(res)}`);
      try {
        for await (const ev of readEvents(res)) handleEvent(threadId, ev);
        break;
      } catch (err) {
        // The connection dropped mid-run: join again after the last event seen.
        if (controller.signal.aborted || !state.runId || !state.lastEventId || retries >= 3) throw err;
        retries += 1;
        setStatus(`Connection lost; joining run ${state.runId} again after event ${state.lastEventId}…`);
        res = await fetch(apiBase() + `/threads/${threadId}/runs/${state.runId}/stream`, {
          headers: headers({ "Last-Event-ID": state.lastEventId }), signal: controller.signal,
        });
      }
    }
  } finally {
    if (state.controller === controller) state.controller = null;
    setRunning(false);
  }
  await finishRun(threadId);
}

function handleEvent(threadId, ev) {
  if (ev.id) {
    state.lastEventId = ev.id;
    saveSettings({ active: { threadId, runId: state.runId, lastEventId: ev.id } });
  }
  const base = ev.event.split("|")[0];
  if (base === "metadata") {
    state.runId = ev.data.run_id;
    saveSettings({ active: { threadId, runId: state.runId, lastEventId: state.lastEventId } });
    setStatus(`Run ${state.runId} running on thread ${threadId}`);
  } else if (base === "messages") {
    renderChunk(ev.data);
  } else if (base === "updates") {
    if (ev.data && ev.data.__interrupt__) showInterrupts(ev.data.__interrupt__);
  } else if (base === "values") {
    state.lastValues = ev.data;
  } else if (base === "error") {
    notice(`Error: ${ev.data?.message ?? JSON.stringify(ev.data)}`, "error");
  }
}

async function finishRun(threadId) {
  const runId = state.runId ?? (useV2() ? await latestRunId(threadId) : null);
  saveSettings({ active: null });
  const thread = await api("GET", `/threads/${threadId}`);
  const run = runId ? await api("GET", `/threads/${threadId}/runs/${runId}`) : null;
  if (state.lastValues && !Array.isArray(state.lastValues.messages)) {
    const { __interrupt__: _shownAbove, ...values } = state.lastValues;
    addBubble("values", JSON.stringify(values, null, 2));
  }
  showInterrupts(Object.values(thread.interrupts ?? {}).flat());
  setStatus(`Run ${runId ?? "?"} ${run?.status ?? "ended"} · thread ${threadId} ${thread.status}`);
  ui.transcript.dataset.lastRunStatus = run?.status ?? "";
  state.runId = null;
  state.lastEventId = null;
  loadThreads().catch(() => {});
}

// ------------------------------------------------------------------ runs over protocol v2

const useV2 = () => ui.transport.value !== "classic";

async function command(threadId, method, params) {
  state.commandId += 1;
  const res = await api("POST", `/threads/${threadId}/commands`, { id: state.commandId, method, params });
  if (res.type === "error") throw new Error(`${method}: ${res.error}: ${res.message}`);
  return res;
}

// A command that starts a run (run.start, input.respond), then the thread's events from just before it.
async function startRunV2(method, params) {
  ui.transcript.dataset.lastRunStatus = "";  // at once, like the classic stream: the page is busy from here
  setRunning(true);
  if (!state.threadId) await newThread();
  const threadId = state.threadId;
  const res = await command(threadId, method, params);
  state.runId = res.result?.run_id ?? null;
  await followThreadV2(threadId, res.meta.applied_through_seq);
}

async function followThreadV2(threadId, since) {
  const controller = new AbortController();
  state.controller = controller;
  state.lastValues = null;
  state.v2Seq = since;
  ui.transcript.dataset.lastRunStatus = "";
  saveSettings({ active: { threadId, runId: state.runId, since, stream: "v2" } });
  setRunning(true);
  let retries = 0;
  try {
    for (;;) {
      const res = await fetch(apiBase() + `/threads/${threadId}/stream/events`, {
        method: "POST", headers: headers({ Accept: "text/event-stream" }), signal: controller.signal,
        body: JSON.stringify({ channels: V2_CHANNELS, since: state.v2Seq }),
      });
      if (!res.ok) throw new Error(`POST /threads/${threadId}/stream/events: ${res.status} ${await errorDetail(res)}`);
      try {
        for await (const ev of readEvents(res)) {
          if (handleEventV2(threadId, ev.data)) return;
        }
        return;
      } catch (err) {
        // The connection dropped mid-run: open the stream again after the last event seen.
        if (controller.signal.aborted || retries >= 3) throw err;
        retries += 1;
        setStatus(`Connection lost; following thread ${threadId} again after event ${state.v2Seq}…`);
      }
    }
  } finally {
    controller.abort();  // ends the thread stream, which would otherwise stay open for the next run
    if (state.controller === controller) state.controller = null;
    // `interrupted` is announced while the run is still storing its state: wait for the run to end.
    const runId = state.runId ?? (await latestRunId(threadId));
    if (runId) await api("GET", `/threads/${threadId}/runs/${runId}/join`).catch(() => null);
    setRunning(false);
    await finishRun(threadId);
  }
}

// One protocol event; true once the run has ended. Only the root graph's events are shown.
function handleEventV2(threadId, event) {
  if (!event || event.type !== "event") return false;
  state.v2Seq = event.seq;
  const { namespace, data } = event.params;
  if (namespace.length) return false;
  if (event.method === "messages") renderBlockEvent(data);
  else if (event.method === "values") {
    state.lastValues = data;
    for (const msg of data?.messages ?? []) {
      if (msg.type === "human" || (msg.id && (state.bubbles.has(msg.id) || state.completeIds.has(msg.id)))) continue;
      renderMessage(msg);  // tool results, and messages that were not streamed
    }
  } else if (event.method === "lifecycle") {
    if (data.event === "running") setStatus(`Run ${state.runId ?? ""} running on thread ${threadId}`);
    if (data.event === "failed") notice(`Error: ${data.error}`, "error");
    return V2_RUN_ENDS.has(data.event);
  }
  return false;
}

// A `messages` event: message-start, content-block-start/delta/finish, message-finish.
function renderBlockEvent(data) {
  if (data.event === "message-start") {
    state.v2Message = data.id;
    state.v2Skip = state.completeIds.has(data.id);  // shown whole from the thread state already
    if (!state.v2Skip && !state.bubbles.has(data.id)) {
      const bubble = addBubble(data.role === "ai" ? "ai" : data.role, "", data.id);
      bubble.classList.add("streaming");
      state.bubbles.set(data.id, bubble);
    }
    return;
  }
  const bubble = state.v2Skip ? null : state.bubbles.get(state.v2Message);
  if (!bubble) return;
  if (data.event === "content-block-start" && data.content?.type === "tool_call_chunk") {
    showToolCall(state.v2Message, bubble, data.index, data.content.name, data.content.args);
  } else if (data.event === "content-block-delta" && data.delta.type === "text-delta") {
    bubble.querySelector(".text").textContent += data.delta.text;
  } else if (data.event === "content-block-delta" && data.delta.type === "tool-call-delta") {
    showToolCall(state.v2Message, bubble, data.index, null, data.delta.args);
  } else if (data.event === "message-finish") {
    bubble.classList.remove("streaming");
  }
  scrollDown();
}

async function latestRunId(threadId) {
  const runs = await api("GET", `/threads/${threadId}/runs?limit=1`);
  return runs[0]?.run_id ?? null;
}

// ------------------------------------------------------------------ sending

async function sendMessage(text) {
  let body;
  if (text.startsWith("{")) {
    try { body = { input: JSON.parse(text) }; } catch { body = null; }
  }
  if (!body) body = { input: { messages: [{ role: "user", content: text }] } };
  addBubble("human", text);
  showInterrupts([]);
  if (useV2()) await startRunV2("run.start", { assistant_id: ui.assistant.value, input: body.input });
  else await startRun(body);
}

async function resume(value) {
  const resumeValue = state.interrupts.length > 1
    ? Object.fromEntries(state.interrupts.map((i) => [i.id, value]))
    : value;
  notice(`resumed with ${JSON.stringify(value)}`);
  const answered = state.interrupts;
  showInterrupts([]);
  if (useV2()) {
    const responses = answered.map((i) => ({ interrupt_id: i.id, namespace: [], response: value }));
    await startRunV2("input.respond", { responses });
    return;
  }
  await startRun({ command: { resume: resumeValue } });
}

async function cancelRun() {
  if (!state.threadId) return;
  const runId = state.runId ?? (useV2() ? await latestRunId(state.threadId) : null);
  if (!runId) return;
  ui.cancel.disabled = true;
  setStatus(`Cancelling run ${runId}…`);
  await api("POST", `/threads/${state.threadId}/runs/${runId}/cancel?action=interrupt`);
}

// A run that was streaming when the page was closed or reloaded: show the thread and join it again.
async function reconnect() {
  const { active } = loadSettings();
  if (active?.stream === "v2" && active.threadId) return reconnectV2(active);
  if (!active?.threadId || !active?.runId) return false;
  let run;
  try {
    run = await api("GET", `/threads/${active.threadId}/runs/${active.runId}`);
  } catch {
    saveSettings({ active: null });
    return false;
  }
  await openThread(active.threadId);
  if (!INFLIGHT.has(run.status)) {
    saveSettings({ active: null });
    return false;
  }
  notice(`reconnected to run ${active.runId} (last event ${active.lastEventId ?? "none"})`);
  setStatus(`Run ${active.runId} running on thread ${active.threadId} (reconnected)`);
  // The page was rebuilt from the thread state: replay the run from its first event ("-") and skip the
  // messages that state already shows complete, so a half-streamed message is shown whole.
  await joinRun(active.threadId, active.runId, "-");
  return true;
}

// Protocol v2: the thread's events again from just before the run, skipping messages the state shows whole.
async function reconnectV2(active) {
  let thread;
  try {
    thread = await openThread(active.threadId);
  } catch {
    saveSettings({ active: null });
    return false;
  }
  if (thread.status !== "busy") {
    saveSettings({ active: null });
    return false;
  }
  ui.transport.value = "v2";
  state.runId = active.runId ?? null;
  notice(`reconnected to run ${active.runId ?? "on the thread"} (thread events after ${active.since})`);
  await followThreadV2(active.threadId, active.since);
  return true;
}

// ------------------------------------------------------------------ wiring

function fail(err) {
  console.error(err);
  setStatus(String(err.message ?? err), true);
}

async function connect() {
  // Remember another server only: the default is the server that served this page.
  const typed = ui.apiUrl.value.trim().replace(/\/+$/, "");
  saveSettings({ apiUrl: typed === location.origin ? "" : typed });
  saveToken(ui.token.value);
  setStatus(`Connecting to ${apiBase()}…`);
  await loadAssistants();
  await loadThreads();
  if (await reconnect()) return;
  const { threadId } = loadSettings();
  if (threadId) {
    try { await openThread(threadId); return; } catch { saveSettings({ threadId: null }); }
  }
  setStatus(`Connected to ${apiBase()}. Type a message to start a thread.`);
}

ui.connection.addEventListener("submit", (e) => { e.preventDefault(); connect().catch(fail); });
ui.assistant.addEventListener("change", () => saveSettings({ assistantId: ui.assistant.value }));
ui.transport.addEventListener("change", () => saveSettings({ transport: ui.transport.value }));
ui.newThread.addEventListener("click", () => newThread().catch(fail));
ui.refreshThreads.addEventListener("click", () => loadThreads().catch(fail));
ui.cancel.addEventListener("click", () => cancelRun().catch(fail));
ui.composer.addEventListener("submit", (e) => {
  e.preventDefault();
  const text = ui.message.value.trim();
  if (!text || state.controller) return;
  ui.message.value = "";
  sendMessage(text).catch(fail);
});
ui.message.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); ui.composer.requestSubmit(); }
});
ui.interruptApprove.addEventListener("click", () => resume(true).catch(fail));
ui.interruptReply.addEventListener("click", () => {
  const text = ui.interruptAnswer.value.trim();
  let value = text;
  try { value = JSON.parse(text); } catch { /* plain text answer */ }
  ui.interruptAnswer.value = "";
  resume(value).catch(fail);
});

const saved = loadSettings();
ui.apiUrl.value = saved.apiUrl || location.origin;
ui.token.value = loadToken();
ui.transport.value = saved.transport === "classic" ? "classic" : "v2";
connect().catch(fail);
