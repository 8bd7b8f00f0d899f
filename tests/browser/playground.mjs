// Drives the server's own playground page (/playground) end to end in headless Chromium.
// usage: API_URL=... [PLAYGROUND_STREAM=v2|classic] node playground.mjs <scenario>
// PLAYGROUND_STREAM picks the page's streaming: protocol v2 (the default) or the classic run stream.
import assert from "node:assert/strict";
import { env, screenshot, withBrowser } from "./lib.mjs";

const API_URL = env("API_URL");
const ANSWER = "The weather in sf is sunny.";
const LONG = [...Array.from({ length: 39 }, (_, i) => `word${i} `), "end."].join("");
const TOKEN = "playground-test-token";
const STREAM = process.env.PLAYGROUND_STREAM || "v2";

async function open(page) {
  await page.goto(`${API_URL}/playground`);
  await page.waitForFunction(() => document.querySelectorAll("#assistant option").length > 0);
  await page.selectOption("#transport", STREAM);
}

// Waits (up to the page's generous default timeout) until `selector`'s text matches `pattern`: the page updates
// asynchronously, so reading the text once right after an action races the update on a busy machine.
async function waitForText(page, selector, pattern) {
  try {
    await page.waitForFunction(
      ([sel, source, flags]) => new RegExp(source, flags).test(document.querySelector(sel)?.textContent ?? ""),
      [selector, pattern.source, pattern.flags],
    );
  } catch (err) {
    assert.match((await page.textContent(selector)) ?? "", pattern); // names the text that was there instead
    throw err;
  }
}

async function chooseGraph(page, graphId) {
  const value = await page.$eval(
    "#assistant",
    (select, id) => [...select.options].find((o) => o.dataset.graphId === id)?.value,
    graphId,
  );
  assert.ok(value, `no assistant for graph ${graphId}`);
  await page.selectOption("#assistant", value);
}

async function send(page, text) {
  await page.fill("#message", text);
  await page.press("#message", "Enter");
}

const lastAiText = (page) => page.locator('#transcript li[data-role="ai"] .text').last();

const checks = {
  // A server with authentication on: the page loads, says 401 without a token, works with one.
  async auth(page) {
    await page.goto(`${API_URL}/playground`);  // public page; the API behind it needs a token
    await page.waitForFunction(() => document.getElementById("status").classList.contains("error"));
    await waitForText(page, "#status", /401/);
    await page.fill("#token", env("TOKEN"));
    await page.click("#connect");
    await page.waitForFunction(() => document.querySelectorAll("#assistant option").length > 0);
    await chooseGraph(page, "typing");
    await page.click("#new-thread");
    await page.waitForFunction(() => /^Thread /.test(document.getElementById("status").textContent));
    await send(page, "what is the weather in sf?");
    await page.waitForFunction(() => document.getElementById("transcript").dataset.lastRunStatus === "success");
    assert.equal(await lastAiText(page).textContent(), ANSWER);
    await screenshot(page, "playground-auth.png");
  },

  // Type, watch the answer stream in token by token, see the tool call and its result; bearer token sent.
  async chat(page) {
    const authHeaders = [];
    await open(page);
    await page.fill("#token", TOKEN);
    page.on("request", (req) => {
      if (req.url().startsWith(API_URL) && !req.url().includes("/playground")) {
        authHeaders.push(req.headers().authorization ?? null);
      }
    });
    await page.click("#connect");
    await chooseGraph(page, "typing");
    await page.click("#new-thread");
    await page.waitForFunction(() => /^Thread /.test(document.getElementById("status").textContent));
    await send(page, "what is the weather in sf?");

    // While streaming, the answer is seen partly written (the model waits between tokens).
    await page.waitForFunction(
      (full) => {
        const texts = [...document.querySelectorAll('#transcript li[data-role="ai"] .text')];
        const t = texts.at(-1)?.textContent ?? "";
        return t.length > 0 && t !== full && full.startsWith(t);
      },
      ANSWER,
      { polling: 10 },
    );
    await page.waitForFunction(() => document.getElementById("transcript").dataset.lastRunStatus === "success");
    assert.equal(await lastAiText(page).textContent(), ANSWER);
    assert.equal(await page.locator("#transcript .tool-call").first().textContent(), 'tool call: get_weather({"city": "sf"})');
    assert.equal(
      await page.locator('#transcript li[data-role="tool"] .text').textContent(),
      "get_weather → It's sunny in sf",
    );
    assert.equal(await page.locator('#transcript li[data-role="human"] .text').textContent(), "what is the weather in sf?");
    await waitForText(page, "#status", /success/);
    await screenshot(page, "playground-chat.png");

    assert.ok(authHeaders.length > 0);
    assert.ok(authHeaders.every((h) => h === `Bearer ${TOKEN}`), `authorization headers: ${authHeaders}`);

    // Reopen the thread from the list after starting another one.
    const threadId = await page.$eval("#threads button.current", (b) => b.dataset.threadId);
    await page.click("#new-thread");
    await page.waitForFunction(() => document.querySelectorAll("#transcript li").length === 0);
    await page.click(`#threads button[data-thread-id="${threadId}"]`);
    await page.waitForFunction(() => document.querySelectorAll('#transcript li[data-role="ai"]').length === 2);
    assert.equal(await lastAiText(page).textContent(), ANSWER);
  },

  // A graph that calls interrupt(): the page shows the question, Approve resumes and the run finishes.
  async interrupt(page) {
    await open(page);
    await chooseGraph(page, "interrupt");
    await page.click("#new-thread");
    await page.waitForFunction(() => /^Thread /.test(document.getElementById("status").textContent));
    await send(page, '{"request": "deploy"}');
    await page.waitForSelector("#interrupt:not([hidden])");
    await waitForText(page, "#interrupt-value", /approve deploy\?/);
    await waitForText(page, "#status", /interrupted/);
    await page.click("#interrupt-approve");
    await page.waitForFunction(() => document.getElementById("transcript").dataset.lastRunStatus === "success");
    await page.waitForSelector("#interrupt", { state: "hidden" });
    const values = JSON.parse(await page.locator('#transcript li[data-role="values"] .text').last().textContent());
    assert.equal(values.result, "deploy -> True");  // the graph formats the resume value with Python

    // Answer a second interrupt with text instead.
    await page.click("#new-thread");
    await page.waitForFunction(() => document.querySelectorAll("#transcript li").length === 0);
    await send(page, '{"request": "rollback"}');
    await page.waitForSelector("#interrupt:not([hidden])");
    await page.fill("#interrupt-answer", "not today");
    await page.click("#interrupt-reply");
    await page.waitForFunction(() => document.getElementById("transcript").dataset.lastRunStatus === "success");
    const answered = JSON.parse(await page.locator('#transcript li[data-role="values"] .text').last().textContent());
    assert.equal(answered.result, "rollback -> not today");
    await screenshot(page, "playground-interrupt.png");
  },

  // Cancel a long run from the page: the stream stops early and the run ends interrupted.
  async cancel(page) {
    await open(page);
    await chooseGraph(page, "typing_long");
    await page.click("#new-thread");
    await page.waitForFunction(() => /^Thread /.test(document.getElementById("status").textContent));
    await send(page, "talk for a while");
    await page.waitForFunction(() => /word2 /.test(document.querySelector('#transcript li[data-role="ai"]:last-child .text')?.textContent ?? ""));
    await page.click("#cancel");
    await page.waitForFunction(() => document.getElementById("transcript").dataset.lastRunStatus !== undefined
      && document.getElementById("transcript").dataset.lastRunStatus !== "");
    assert.equal(await page.$eval("#transcript", (t) => t.dataset.lastRunStatus), "interrupted");
    const text = await lastAiText(page).textContent();
    assert.ok(!text.endsWith("end."), `the run was not cut short: ${text}`);
    assert.equal(await page.isDisabled("#cancel"), true);
    assert.equal(await page.isEnabled("#send"), true);
  },

  // Reload the page in the middle of a run: the page joins the run again and shows the whole answer once.
  async reload(page) {
    await open(page);
    await chooseGraph(page, "typing_long");
    await page.click("#new-thread");
    await page.waitForFunction(() => /^Thread /.test(document.getElementById("status").textContent));
    await send(page, "talk for a while");
    await page.waitForFunction(() => /word4 /.test(document.querySelector('#transcript li[data-role="ai"]:last-child .text')?.textContent ?? ""));
    const joins = [];
    page.on("request", (req) => {
      if (/\/runs\/[0-9a-f-]+\/stream$/.test(req.url())) joins.push(req.headers()["last-event-id"] ?? null);
      if (/\/stream\/events$/.test(req.url())) joins.push(JSON.parse(req.postData()).since);
    });
    await page.reload();
    await page.waitForSelector('#transcript li.notice:has-text("reconnected to run")');
    await page.waitForFunction(() => document.getElementById("transcript").dataset.lastRunStatus === "success", null, {
      timeout: 30000,
    });
    if (STREAM === "classic") assert.deepEqual(joins, ["-"], "joined the run once, from its first event");
    else assert.ok(joins.length === 1 && Number.isInteger(joins[0]), `followed the thread once, after a seq: ${joins}`);
    const ai = await page.locator('#transcript li[data-role="ai"] .text').allTextContents();
    assert.deepEqual(ai, ["", LONG], "tool-call message, then the whole answer exactly once");
    assert.equal(await page.locator('#transcript li[data-role="tool"]').count(), 1);
    assert.equal(await page.locator('#transcript li[data-role="human"]').count(), 1);
  },
};

const scenario = process.argv[2];
if (!checks[scenario]) {
  console.error(`unknown scenario ${scenario}; one of ${Object.keys(checks).join(", ")}`);
  process.exit(2);
}
await withBrowser(`playground-${scenario}`, (page) => checks[scenario](page));
