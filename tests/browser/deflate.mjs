// Chromium's WebSocket to the example chat (examples/chat) negotiates
// permessage-deflate with bayleaf and still works.
//
//   node deflate.mjs ROOM URL [EXPECT]
//
// Opens URL/chat/ROOM/ and checks the page's own socket got a
// Sec-WebSocket-Extensions answer (seen through the DevTools protocol), then
// opens a second WebSocket from the page: `ws.extensions` must contain
// "permessage-deflate" (EXPECT=off: must be empty), and a long message (sent
// compressed by Chromium, broadcast compressed by bayleaf) must come back on
// both sockets. Prints "BROWSER-DEFLATE OK" and exits 0 on success.
//
// Environment: CHROMIUM (default /usr/bin/chromium).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const STEP_TIMEOUT = 15000;
const OVERALL_TIMEOUT = 90000;

const [room, base, expect = "on"] = process.argv.slice(2);
if (!room || !base) {
  console.error("usage: node deflate.mjs ROOM URL [on|off]");
  process.exit(2);
}
const watchdog = setTimeout(() => {
  console.error(`BROWSER-DEFLATE FAIL: no result after ${OVERALL_TIMEOUT} ms`);
  process.exit(3);
}, OVERALL_TIMEOUT);

const userDataDir = mkdtempSync(join(tmpdir(), "bayleaf-chromium-"));
let context = null;

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function main() {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    timeout: 30000,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--no-first-run"],
  });
  context.setDefaultTimeout(STEP_TIMEOUT);
  const page = await context.newPage();

  // The page's own socket: its handshake response, through DevTools.
  const handshakes = [];
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  cdp.on("Network.webSocketHandshakeResponseReceived", (e) => handshakes.push(e.response));

  await page.goto(`${base}/chat/${room}/`);
  await page.locator('#chat-status[data-state="open"]').waitFor({ timeout: STEP_TIMEOUT });
  check(handshakes.length >= 1, "no WebSocket handshake seen for the page's socket");
  const headers = Object.fromEntries(
    Object.entries(handshakes[0].headers).map(([k, v]) => [k.toLowerCase(), v]));
  const agreed = headers["sec-websocket-extensions"] || "";
  check(handshakes[0].status === 101, `handshake status ${handshakes[0].status}`);
  if (expect === "on") {
    check(agreed.startsWith("permessage-deflate"), `page socket's extensions: ${JSON.stringify(agreed)}`);
  } else {
    check(agreed === "", `page socket got extensions with compression off: ${JSON.stringify(agreed)}`);
  }

  // A second socket from the page: ws.extensions, and a long message round trip.
  const text = "compressible chat line " + "0123456789 abcdefghij ".repeat(60) + Date.now();
  const result = await page.evaluate(async ({ room, text }) => {
    const url = `ws://${location.host}/ws/chat/${encodeURIComponent(room)}/`;
    const ws = new WebSocket(url);
    return await new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ error: "timeout" }), 10000);
      ws.onerror = () => resolve({ error: "socket error" });
      ws.onopen = () => ws.send(JSON.stringify({ message: text }));
      ws.onmessage = (event) => {
        const data = JSON.parse(event.data);
        if (data.message !== text) return;
        clearTimeout(timer);
        const extensions = ws.extensions;
        ws.close(1000);
        resolve({ extensions, echoed: true });
      };
    });
  }, { room, text });
  check(!result.error, `second socket: ${result.error}`);
  if (expect === "on") {
    check(result.extensions.includes("permessage-deflate"),
      `ws.extensions is ${JSON.stringify(result.extensions)}`);
  } else {
    check(result.extensions === "", `ws.extensions is ${JSON.stringify(result.extensions)}`);
  }
  // The page's own (compressed) socket got the broadcast too.
  await page.locator("#chat-log li", { hasText: text }).first().waitFor({ timeout: STEP_TIMEOUT });
  console.log(`BROWSER-DEFLATE OK extensions=${JSON.stringify(result.extensions)} ` +
    `page=${JSON.stringify(agreed)} bytes=${text.length}`);
}

let code = 0;
try {
  await main();
} catch (err) {
  console.error(`BROWSER-DEFLATE FAIL: ${err && err.stack ? err.stack : err}`);
  code = 1;
} finally {
  if (context) await context.close().catch((err) => console.error(`closing chromium: ${err}`));
  rmSync(userDataDir, { recursive: true, force: true });
  clearTimeout(watchdog);
}
process.exit(code);
