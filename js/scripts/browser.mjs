#!/usr/bin/env node
/**
 * The demo page in a real browser (tests/js/test_demo_page.py drives it): opens PAGE_URL in headless
 * Chromium (the system's, $CHROMIUM or /usr/bin/chromium) with puppeteer-core, types each text of
 * the JSON list on stdin into the page, presses Answer, and reads the answer the page shows (its
 * JSON, and what it drew); writes the results as one JSON list, and a screenshot to SCREENSHOT.
 *
 *   node scripts/browser.mjs PAGE_URL SCREENSHOT < texts.json
 */
import { existsSync } from "node:fs";
import puppeteer from "puppeteer-core";

const [url, screenshot] = process.argv.slice(2);
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const texts = JSON.parse(Buffer.concat(chunks).toString("utf-8"));
const executablePath = process.env.CHROMIUM ?? ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find(existsSync);
if (!executablePath) {
  process.stderr.write("no Chromium: install the system's (Debian: apt-get install chromium) or set CHROMIUM\n");
  process.exit(2);
}
const browser = await puppeteer.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const consoleLines = [];
try {
  const page = await browser.newPage();
  page.on("console", (message) => consoleLines.push(`${message.type()}: ${message.text()}`));
  page.on("pageerror", (error) => consoleLines.push(`pageerror: ${error.message}`));
  await page.goto(url, { waitUntil: "load" });
  await page.waitForFunction(() => ["ready", "error"].includes(document.body.dataset.state), { timeout: 60000 });
  const loaded = await page.evaluate(() => ({ state: document.body.dataset.state, task: document.body.dataset.task ?? null, error: document.getElementById("error").textContent }));
  const results = [];
  if (loaded.state === "ready") {
    for (const text of texts) {
      await page.$eval("#text", (area, value) => (area.value = value), text);
      await page.evaluate(() => delete document.body.dataset.state);
      await page.click("#answer-button");
      await page.waitForFunction(() => ["answered", "error"].includes(document.body.dataset.state), { timeout: 60000 });
      results.push(
        await page.evaluate(() => ({
          state: document.body.dataset.state,
          json: document.getElementById("json").textContent,
          error: document.getElementById("error").hidden ? null : document.getElementById("error").textContent,
          bars: [...document.querySelectorAll(".bar-row")].map((row) => [row.dataset.label, Number(row.dataset.probability)]),
          tags: [...document.querySelectorAll(".token")].map((span) => span.dataset.tag),
        })),
      );
    }
  }
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  process.stdout.write(JSON.stringify({ loaded, results, console: consoleLines }) + "\n");
} finally {
  await browser.close();
}
