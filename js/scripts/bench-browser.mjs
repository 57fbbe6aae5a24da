#!/usr/bin/env node
/**
 * The package's speed in headless Chromium on onnxruntime-web (benchmarks/bench_js_runtime.py drives
 * it): opens the demo page at PAGE_URL, then times the page's predictor as scripts/bench.mjs does.
 *
 *   node scripts/bench-browser.mjs PAGE_URL < request.json
 */
import { existsSync } from "node:fs";
import puppeteer from "puppeteer-core";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { texts, repeats = 20 } = JSON.parse(Buffer.concat(chunks).toString("utf-8"));
const executablePath = process.env.CHROMIUM ?? ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find(existsSync);
const browser = await puppeteer.launch({ executablePath, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
try {
  const page = await browser.newPage();
  await page.goto(process.argv[2], { waitUntil: "load" });
  await page.waitForFunction(() => document.body.dataset.state === "ready", { timeout: 120000 });
  const result = await page.evaluate(
    async (texts, repeats) => {
      const predictor = globalThis.kerasSeqDemo.predictor;
      const batch = texts.slice(0, 64);
      await predictor.predict([texts[0]]);
      await predictor.predict(batch);
      const batch1 = [];
      for (let i = 0; i < repeats; i++) {
        const start = performance.now();
        await predictor.predict([texts[i % texts.length]]);
        batch1.push((performance.now() - start) / 1000);
      }
      const batch64 = [];
      for (let i = 0; i < Math.max(3, Math.floor(repeats / 5)); i++) {
        const start = performance.now();
        await predictor.predict(batch);
        batch64.push((performance.now() - start) / 1000);
      }
      return { batch1_seconds: batch1, batch64_seconds: batch64 };
    },
    texts,
    repeats,
  );
  process.stdout.write(JSON.stringify(result) + "\n");
} finally {
  await browser.close();
}
