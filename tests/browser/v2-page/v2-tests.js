// Protocol-v2 scenarios run inside the page with the official JS SDK 1.15 (`client.threads.stream()`),
// against the server on another origin. Each returns plain data; the Node driver (v2.mjs) asserts on it.
import { Client } from "langgraph-sdk-1-15";

const userMessage = (content) => ({ messages: [{ role: "user", content }] });
const client = (apiUrl) => new Client({ apiUrl, apiKey: null });

// Resolves with the first event `test` accepts, from every event the thread stream sees.
function nextEvent(thread, test, what, ms = 30000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
    const off = thread.onEvent((event) => {
      if (!test(event)) return;
      clearTimeout(timer);
      off();
      resolve(event);
    });
  });
}

// A condition re-checked whenever `changed()` is called: `until(check, what)` resolves once `check()` holds
// and rejects naming `what` after `ms` (a deadline, not a wait).
function watched() {
  const waiters = new Set();
  return {
    changed() {
      for (const waiter of [...waiters]) waiter();
    },
    until(check, what, ms = 30000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`no ${what} within ${ms} ms`));
        }, ms);
        const waiter = () => {
          if (!check()) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          resolve();
        };
        waiters.add(waiter);
        waiter();
      });
    },
  };
}

const rootLifecycle = (phase) => (e) =>
  e.method === "lifecycle" && e.params.namespace.length === 0 && e.params.data.event === phase;

async function streamRun(apiUrl, transport = "sse") {
  const thread = client(apiUrl).threads.stream({ assistantId: "typing", transport });
  const tokens = [];
  const arrivals = watched();
  const messages = (async () => {
    for await (const message of thread.messages) {
      for await (const text of message.text) {
        tokens.push({ text, at: performance.now() });
        arrivals.changed();
      }
    }
  })();
  const completed = nextEvent(thread, rootLifecycle("completed"), "completed lifecycle");
  const started = await thread.run.start({ input: userMessage("what is the weather in sf?") });
  const output = await thread.output;
  await completed;
  // every token of the final answer has arrived (checked on each token, with a deadline)
  const finalText = output.messages.at(-1).content.map((b) => b.text ?? "").join("");
  await arrivals.until(() => tokens.map((t) => t.text).join("").endsWith(finalText), "the last token of the answer");
  await thread.close();
  return {
    runId: started.run_id,
    threadId: thread.threadId,
    tokens,
    types: output.messages.map((m) => m.type),
    toolCall: output.messages[1].tool_calls?.[0]?.name,
    toolResult: output.messages[2].content,
    finalText: output.messages.at(-1).content.map((b) => b.text ?? "").join(""),
  };
}

async function interruptResume(apiUrl) {
  const sdk = client(apiUrl);
  const thread = sdk.threads.stream({ assistantId: "interrupt" });
  const requested = nextEvent(thread, (e) => e.method === "input.requested", "input.requested");
  await thread.run.start({ input: { request: "deploy" } });
  const event = await requested;
  const completed = nextEvent(thread, rootLifecycle("completed"), "completed lifecycle after the answer");
  await thread.input.respond({
    interrupt_id: event.params.data.interrupt_id,
    namespace: event.params.namespace,
    response: "yes",
  });
  await completed;
  const state = await sdk.threads.getState(thread.threadId);
  await thread.close();
  return { payload: event.params.data.payload, result: state.values.result };
}

async function failingRun(apiUrl) {
  const thread = client(apiUrl).threads.stream({ assistantId: "fail" });
  const failed = nextEvent(thread, rootLifecycle("failed"), "failed lifecycle");
  await thread.run.start({ input: { count: 1 } });
  const event = await failed;
  let outputError = null;
  try {
    await thread.output;
  } catch (err) {
    outputError = String(err?.message ?? err);
  }
  await thread.close();
  return { error: event.params.data.error, outputError };
}

// The same run over the WebSocket transport (commands and events on one socket, served by the request guard).
const websocketRun = (apiUrl) => streamRun(apiUrl, "websocket");

// Start a long run and return once a few of its tokens arrived; the driver then reloads the page mid-run.
async function startLongRun(apiUrl) {
  const thread = client(apiUrl).threads.stream({ assistantId: "typing_long" });
  let seen = 0;
  const someTokens = nextEvent(
    thread,
    (e) => e.method === "messages" && e.params.data.delta?.type === "text-delta" && ++seen >= 3,
    "the first tokens",
  );
  (async () => {
    for await (const message of thread.messages) await message.text;
  })();
  await thread.run.start({ input: userMessage("a long answer please") });
  await someTokens;
  return { threadId: thread.threadId, seen };
}

// After the reload: attach to the thread by id, follow the rest of the run, read the answer it streamed.
async function rejoinRun(apiUrl, threadId) {
  const sdk = client(apiUrl);
  const thread = sdk.threads.stream(threadId, { assistantId: "typing_long" });
  const completed = nextEvent(thread, rootLifecycle("completed"), "completed lifecycle after the reload");
  thread.startLifecycleWatcher();
  const texts = [];
  (async () => {
    for await (const message of thread.messages) texts.push(await message.text);
  })();
  await completed;
  const state = await sdk.threads.getState(threadId);
  await thread.close();
  return { streamed: texts, final: state.values.messages.at(-1).content.map((b) => b.text ?? "").join("") };
}

window.v2Tests = { streamRun, interruptResume, failingRun, websocketRun, startLongRun, rejoinRun };
document.getElementById("ready").textContent = "ready";
