// Chromium shows the ticker example's price board (examples/ticker).
//
//   node ticker.mjs URL SYMBOL_TO_ADD [WATCH]
//
// Opens URL/ with its default symbols (or URL/?s=WATCH, a comma-separated list) and checks that prices come and change on
// screen (three changes of a price cell's text), then types SYMBOL_TO_ADD in
// the "add a symbol" box: its row must show a price, and the first one must be
// older than the click, which only a retained value can be (the feed of the
// test moves each symbol about once a minute). Prints "BROWSER-TICKER OK" and
// exits 0 on success; non-zero with a reason otherwise.
//
// Environment: CHROMIUM (default /usr/bin/chromium), SCREENSHOT_DIR (optional).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const STEP_TIMEOUT = 20000;
const OVERALL_TIMEOUT = 90000;

const [url, added, watch] = process.argv.slice(2);
if (!url || !added) {
  console.error("usage: node ticker.mjs URL SYMBOL_TO_ADD");
  process.exit(2);
}

const watchdog = setTimeout(() => {
  console.error(`BROWSER-TICKER FAIL: no result after ${OVERALL_TIMEOUT} ms`);
  process.exit(3);
}, OVERALL_TIMEOUT);

const userDataDir = mkdtempSync(join(tmpdir(), "bayleaf-chromium-"));
let context = null;
const pageErrors = [];

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function main() {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    timeout: 30000,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  context.setDefaultTimeout(STEP_TIMEOUT);
  const page = await context.newPage();
  page.on("pageerror", (err) => pageErrors.push(err.message));
  page.on("console", (msg) => {
    if (msg.type() === "error") pageErrors.push(`console: ${msg.text()}`);
  });

  await page.goto(watch ? `${url}/?s=${encodeURIComponent(watch)}` : `${url}/`);
  await page.locator('#status[data-state="open"]').waitFor();
  const symbols = await page.locator("#board tbody tr").evaluateAll((trs) => trs.map((tr) => tr.dataset.symbol));
  check(symbols.length >= 3, `the board lists ${JSON.stringify(symbols)}`);
  check(!symbols.includes(added), `${added} is on the board before it is added`);

  // Every default symbol gets its price (retained values, at once).
  await page.waitForFunction(() => [...document.querySelectorAll("#board tbody tr")]
    .every((tr) => Number(tr.dataset.updates) >= 1 && /\d/.test(tr.querySelector("td.price").textContent)));

  // Prices change on screen: watch the text of the price cells.
  await page.evaluate(() => {
    window.__changes = 0;
    for (const td of document.querySelectorAll("#board td.price")) {
      let last = td.textContent;
      new MutationObserver(() => {
        if (td.textContent !== last) {
          last = td.textContent;
          window.__changes++;
        }
      }).observe(td, { childList: true, characterData: true, subtree: true });
    }
  });
  await page.waitForFunction(() => window.__changes >= 3);
  // and some row's chart has a line (two prices or more)
  await page.waitForFunction(() => [...document.querySelectorAll("#board tbody tr canvas")].some((c) => {
    const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    return data.some((v, i) => i % 4 === 3 && v !== 0);
  }));

  // A symbol added later: its price at once.
  const clickedAt = Date.now();
  await page.locator("#symbol").fill(added);
  await page.locator("#add button").click();
  const row = page.locator(`#board tbody tr[data-symbol="${added}"]`);
  await row.waitFor();
  await page.waitForFunction((s) => {
    const tr = document.querySelector(`#board tbody tr[data-symbol="${s}"]`);
    return tr && Number(tr.dataset.updates) >= 1;
  }, added);
  const firstT = Number(await row.getAttribute("data-first-t"));
  const price = await row.locator("td.price").textContent();
  check(/\d/.test(price), `${added}'s price cell shows ${JSON.stringify(price)}`);
  check(firstT > 0 && firstT < clickedAt,
    `${added}'s first price was published at ${firstT}, not before the click at ${clickedAt}: not the retained value`);

  if (process.env.SCREENSHOT_DIR) await page.screenshot({ path: join(process.env.SCREENSHOT_DIR, "ticker.png") });
  check(pageErrors.length === 0, `errors in the page: ${pageErrors.join(" | ")}`);
  console.log(`BROWSER-TICKER OK symbols=${symbols.length} added=${added} price=${price}`);
}

let code = 0;
try {
  await main();
} catch (err) {
  console.error(`BROWSER-TICKER FAIL: ${err && err.stack ? err.stack : err}`);
  if (pageErrors.length) console.error(`page errors: ${pageErrors.join(" | ")}`);
  code = 1;
} finally {
  if (context) await context.close().catch((err) => console.error(`closing chromium: ${err}`));
  rmSync(userDataDir, { recursive: true, force: true });
  clearTimeout(watchdog);
}
process.exit(code);
