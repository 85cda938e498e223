// Two chromium pages chat through the example project (examples/chat).
//
//   node chat.mjs ROOM URL_A [URL_B]
//
// Page 1 opens the lobby on URL_A, picks ROOM and lands on /chat/ROOM/; page 2
// opens URL_B/chat/ROOM/ (URL_B defaults to URL_A; another server process
// sharing a Redis channel layer otherwise). Each page sends a message and both
// must show both messages, in order, as text. Prints "BROWSER-CHAT OK" and
// exits 0 on success; exits non-zero with a reason otherwise.
//
// Environment: CHROMIUM (default /usr/bin/chromium), SCREENSHOT_DIR (optional:
// saves one PNG per page there).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const STEP_TIMEOUT = 15000;
const OVERALL_TIMEOUT = 90000;

const [room, urlA, urlB = urlA] = process.argv.slice(2);
if (!room || !urlA) {
  console.error("usage: node chat.mjs ROOM URL_A [URL_B]");
  process.exit(2);
}

const watchdog = setTimeout(() => {
  console.error(`BROWSER-CHAT FAIL: no result after ${OVERALL_TIMEOUT} ms`);
  process.exit(3);
}, OVERALL_TIMEOUT);

const userDataDir = mkdtempSync(join(tmpdir(), "bayleaf-chromium-"));
let context = null;
const pageErrors = [];

function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

async function openRoomPage(page, name) {
  await page.locator('#chat-status[data-state="open"]').waitFor({ timeout: STEP_TIMEOUT });
  check(page.url().endsWith(`/chat/${room}/`), `${name} is at ${page.url()}, not the room page`);
  const heading = await page.locator("h1").textContent();
  check(heading.includes(room), `${name}: heading ${JSON.stringify(heading)} lacks the room name`);
}

async function logOf(page) {
  return page.locator("#chat-log li").allTextContents();
}

async function waitForMessage(page, name, text) {
  try {
    await page.locator("#chat-log li", { hasText: text }).first().waitFor({ timeout: STEP_TIMEOUT });
  } catch (err) {
    throw new Error(`${name} never showed ${JSON.stringify(text)}; its log: ${JSON.stringify(await logOf(page))}`);
  }
}

async function main() {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    timeout: 30000,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  context.setDefaultTimeout(STEP_TIMEOUT);

  const pages = [];
  for (const name of ["page 1", "page 2"]) {
    const page = await context.newPage();
    page.on("pageerror", (err) => pageErrors.push(`${name}: ${err.message}`));
    page.on("console", (msg) => {
      if (msg.type() === "error") pageErrors.push(`${name} console: ${msg.text()}`);
    });
    pages.push(page);
  }
  const [one, two] = pages;

  // page 1 goes through the lobby
  await one.goto(`${urlA}/`);
  await one.locator("#room-name").fill(room);
  await one.locator("#room-join").click();
  await one.waitForURL(`**/chat/${room}/`);
  await openRoomPage(one, "page 1");

  // page 2 opens the room directly
  await two.goto(`${urlB}/chat/${room}/`);
  await openRoomPage(two, "page 2");

  // page 1 -> page 2, sent with the Enter key; markup must stay text
  const first = `hello from page 1 <b>not bold</b> & "quoted" ✓ ${Date.now()}`;
  await one.locator("#chat-message-input").fill(first);
  await one.locator("#chat-message-input").press("Enter");
  await waitForMessage(two, "page 2", first);
  await waitForMessage(one, "page 1", first);
  check((await one.locator("#chat-message-input").inputValue()) === "", "page 1's input was not cleared");

  // page 2 -> page 1, sent with the button
  const second = `reply from page 2 – grüße ${Date.now()}`;
  await two.locator("#chat-message-input").fill(second);
  await two.locator("#chat-message-submit").click();
  await waitForMessage(one, "page 1", second);
  await waitForMessage(two, "page 2", second);

  for (const [name, page] of [["page 1", one], ["page 2", two]]) {
    const log = await logOf(page);
    check(JSON.stringify(log) === JSON.stringify([first, second]),
      `${name} log is ${JSON.stringify(log)}, expected both messages once, in order`);
    check((await page.locator("#chat-log b").count()) === 0, `${name} rendered message markup as HTML`);
  }

  if (process.env.SCREENSHOT_DIR) {
    await one.screenshot({ path: join(process.env.SCREENSHOT_DIR, "page1.png") });
    await two.screenshot({ path: join(process.env.SCREENSHOT_DIR, "page2.png") });
  }
  check(pageErrors.length === 0, `errors in the pages: ${pageErrors.join(" | ")}`);
  console.log(`BROWSER-CHAT OK room=${room} a=${urlA} b=${urlB} messages=2`);
}

let code = 0;
try {
  await main();
} catch (err) {
  console.error(`BROWSER-CHAT FAIL: ${err && err.stack ? err.stack : err}`);
  if (pageErrors.length) console.error(`page errors: ${pageErrors.join(" | ")}`);
  code = 1;
} finally {
  if (context) {
    await context.close().catch((err) => console.error(`closing chromium: ${err}`));
  }
  rmSync(userDataDir, { recursive: true, force: true });
  clearTimeout(watchdog);
}
process.exit(code);
