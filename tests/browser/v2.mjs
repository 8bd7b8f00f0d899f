// Drives the protocol-v2 pages (served from another origin than the API) in headless Chromium.
// usage: API_URL=... SITE_URL=... node v2.mjs <jsSdk|react>
import assert from "node:assert/strict";
import { env, screenshot, withBrowser } from "./lib.mjs";

const API_URL = env("API_URL");
const SITE_URL = env("SITE_URL");
const ANSWER = ["The ", "weather ", "in ", "sf ", "is ", "sunny."];
const LONG_END = "end.";
const WAIT = { timeout: 60000 };

const scenarios = {
  // The official JS SDK 1.15 `client.threads.stream()`: a streamed run, an interrupt answered, a failing run,
  // a reload mid-run, and a run streamed over the WebSocket transport.
  async jsSdk(page) {
    await page.goto(`${SITE_URL}/index.html`);
    await page.waitForFunction(() => document.getElementById("ready")?.textContent === "ready");
    assert.notEqual(new URL(SITE_URL).origin, new URL(API_URL).origin, "the page must be on another origin");
    const call = (name) => page.evaluate(([n, api]) => window.v2Tests[n](api), [name, API_URL]);

    const run = await call("streamRun");
    assert.deepEqual(run.types, ["human", "ai", "tool", "ai"]);
    assert.equal(run.toolCall, "get_weather");
    assert.equal(run.toolResult, "It's sunny in sf");
    assert.equal(run.finalText, ANSWER.join(""));
    assert.deepEqual(run.tokens.map((t) => t.text), ANSWER);
    const distinct = new Set(run.tokens.map((t) => Math.round(t.at))).size;
    console.log(`tokens arrived over ${(run.tokens.at(-1).at - run.tokens[0].at).toFixed(0)} ms at ${distinct} times`);
    assert.ok(distinct > ANSWER.length / 2, `tokens arrived in ${distinct} batches, not one by one`);

    const interrupt = await call("interruptResume");
    assert.deepEqual(interrupt.payload, { question: "approve deploy?" });
    assert.equal(interrupt.result, "deploy -> yes");

    const failed = await call("failingRun");
    assert.equal(failed.error, "boom: deliberate failure");

    // A page reload in the middle of a run: the new page attaches to the thread and follows the run to its end.
    const started = await call("startLongRun");
    await page.reload();
    await page.waitForFunction(() => document.getElementById("ready")?.textContent === "ready");
    const rejoined = await page.evaluate(([api, id]) => window.v2Tests.rejoinRun(api, id), [API_URL, started.threadId]);
    assert.ok(rejoined.final.endsWith(LONG_END), `final answer: ${rejoined.final.slice(-40)}`);
    assert.ok(rejoined.streamed.includes(rejoined.final), "the reloaded page's messages projection has the answer");

    const sockets = [];
    page.on("websocket", (socket) => sockets.push(socket.url()));
    const ws = await call("websocketRun");
    assert.deepEqual(ws.types, ["human", "ai", "tool", "ai"]);
    assert.equal(ws.finalText, ANSWER.join(""));
    assert.deepEqual(ws.tokens.map((t) => t.text), ANSWER);
    const wsUrl = `${API_URL.replace("http", "ws")}/threads/${ws.threadId}/stream/events`;
    assert.ok(sockets.includes(wsUrl), `no WebSocket to ${wsUrl}: ${sockets}`);
    console.log(`websocket transport: ${ws.tokens.length} tokens over ${wsUrl}`);
  },

  // @langchain/react useStream: a streamed run shows its messages, an interrupt is answered, a failing run shows
  // its error, and a reload in the middle of a run rejoins the thread and shows the finished answer.
  async react(page) {
    const open = async (assistant, fresh = true) => {
      await page.goto(`${SITE_URL}/react.html?api=${encodeURIComponent(API_URL)}&assistant=${assistant}`);
      if (fresh) await page.evaluate(() => sessionStorage.removeItem("threadId"));
      if (fresh) await page.reload();
      await page.waitForFunction(() => window.chat !== undefined);
    };
    const lastMessage = () => page.$eval("#messages li:last-child", (li) => li.textContent).catch(() => "");

    await open("typing");
    await page.evaluate(() => window.chat.send("what is the weather in sf?"));
    await page.waitForFunction((answer) => document.querySelector("#messages li:last-child")?.textContent === answer,
      ANSWER.join(""), WAIT);
    const types = await page.$$eval("#messages li", (items) => items.map((li) => li.dataset.type));
    assert.deepEqual(types, ["human", "ai", "tool", "ai"]);
    await screenshot(page, "v2-react-chat.png");

    await open("interrupt");
    await page.evaluate(() => window.chat.start({ request: "deploy" }));
    await page.waitForSelector("#interrupt", WAIT);
    assert.deepEqual(JSON.parse(await page.textContent("#interrupt")), { question: "approve deploy?" });
    await page.evaluate(() => window.chat.respond("yes"));
    await page.waitForFunction(() => JSON.parse(document.getElementById("values").textContent).result === "deploy -> yes",
      null, WAIT);

    await open("fail");
    await page.evaluate(() => window.chat.start({ count: 1 }).catch(() => {}));
    await page.waitForSelector("#error", WAIT);
    assert.match(await page.textContent("#error"), /boom: deliberate failure/);

    await open("typing_long");
    await page.evaluate(() => {
      window.chat.send("a long answer please"); // not awaited: submit resolves when the run ends
    });
    await page.waitForFunction(() => /word3 /.test(document.querySelector("#messages li:last-child")?.textContent ?? ""),
      null, WAIT);
    const before = await lastMessage();
    assert.ok(!before.endsWith(LONG_END), "the run should still be going when the page reloads");
    const threadId = await page.textContent("#thread");
    await open("typing_long", false);
    assert.equal(await page.textContent("#thread"), threadId, "the reloaded page keeps its thread");
    await page.waitForFunction((end) => (document.querySelector("#messages li:last-child")?.textContent ?? "").endsWith(end),
      LONG_END, WAIT);
    const after = await lastMessage();
    assert.ok(after.startsWith("word0 word1 "), `after the reload: ${after.slice(0, 60)}`);
    await screenshot(page, "v2-react-reload.png");
  },
};

const name = process.argv[2];
if (!scenarios[name]) {
  console.error(`unknown scenario ${name}; one of ${Object.keys(scenarios)}`);
  process.exit(2);
}
await withBrowser(`v2-${name}`, (page) => scenarios[name](page));
