#!/usr/bin/env node
/**
 * The JavaScript package's speed on one export (benchmarks/bench_js_runtime.py drives it): reads
 * {"texts": [...], "repeats": N} on stdin; prints {"batch1_seconds": [...], "batch64_seconds": [...]}:
 * each text answered alone (tokenization included), and the first 64 texts answered together,
 * after one warm-up call of each.
 *
 *   node scripts/bench.mjs EXPORT_DIR < request.json
 */
import { performance } from "node:perf_hooks";
import { loadPredictor } from "../src/node.js";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { texts, repeats = 20, threads } = JSON.parse(Buffer.concat(chunks).toString("utf-8"));
const predictor = await loadPredictor(process.argv[2], threads ? { threads } : {});

async function measure(predict, texts, repeats) {
  const batch = texts.slice(0, 64);
  await predict([texts[0]]);
  await predict(batch);
  const batch1 = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    await predict([texts[i % texts.length]]);
    batch1.push((performance.now() - start) / 1000);
  }
  const batch64 = [];
  for (let i = 0; i < Math.max(3, Math.floor(repeats / 5)); i++) {
    const start = performance.now();
    await predict(batch);
    batch64.push((performance.now() - start) / 1000);
  }
  return { batch1_seconds: batch1, batch64_seconds: batch64 };
}

process.stdout.write(JSON.stringify(await measure((t) => predictor.predict(t), texts, repeats)) + "\n");
