// Shared helpers for the browser test drivers: launch Debian's Chromium through playwright-core.
import { mkdir, rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const ARTIFACTS = resolve(process.env.ARTIFACTS_DIR ?? join(here, "..", "..", "test-artifacts"));

export function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is required`);
  return value;
}

// Headless Chromium with the flags this machine needs: no sandbox as root, no GPU, no background
// networking (the closed network refuses it), a fresh profile every time.
export async function launch() {
  const userDataDir = join(ARTIFACTS, "chromium-profile", `${process.pid}-${Date.now()}`);
  await mkdir(userDataDir, { recursive: true });
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1200, height: 800 },
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const close = async () => {
    await context.close();
    await rm(userDataDir, { recursive: true, force: true });
  };
  const page = context.pages()[0] ?? (await context.newPage());
  // Waits are for conditions; the deadline is generous because CI shares two cores with other work.
  page.setDefaultTimeout(60000);
  const problems = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(`console: ${msg.text()}`);
  });
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  return { close, page, problems };
}

export async function screenshot(page, name) {
  await mkdir(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, name);
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot: ${path}`);
  return path;
}

// Runs `body` with a fresh browser; prints what went wrong and sets the exit code on failure.
export async function withBrowser(name, body) {
  const { close, page, problems } = await launch();
  try {
    await body(page, problems);
    console.log(`ok: ${name}`);
  } catch (err) {
    process.exitCode = 1;
    console.error(`FAILED: ${name}\n${err.stack ?? err}`);
    if (problems.length) console.error(`browser said:\n  ${problems.join("\n  ")}`);
    try {
      await screenshot(page, `failed-${name}.png`);
    } catch {
      // the page may be gone
    }
  } finally {
    await close();
  }
}
