#!/usr/bin/env node
/**
 * The conformance harness's JavaScript half (tests/js/conformance.py drives it): reads
 * {"export": DIR, "calls": [{"method", "texts", "length"}]} as JSON on stdin, answers every call
 * with the package's API on onnxruntime-node, and writes the results as one JSON list.
 * A text given as {"bytes": BASE64} is passed as a Uint8Array (bytes as Python receives them).
 * Methods: predict, generate, tagScores, ids (the tokenizer's ids), tokens.
 */
import { toPythonJson } from "../src/index.js";
import { loadPredictor } from "../src/node.js";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = JSON.parse(Buffer.concat(chunks).toString("utf-8"));
const predictor = await loadPredictor(request.export, { int8: Boolean(request.int8) });
const asInput = (t) => (t !== null && typeof t === "object" && !Array.isArray(t) ? new Uint8Array(Buffer.from(t.bytes, "base64")) : t);

const results = [];
for (const call of request.calls) {
  const texts = call.texts.map(asInput);
  try {
    if (call.method === "predict") results.push(await predictor.predict(texts));
    else if (call.method === "generate") results.push(await predictor.generate(texts, call.length ?? null));
    else if (call.method === "tagScores") results.push((await predictor.tagScores(texts)).map((s) => ({ _scores: Array.from(s) })));
    else if (call.method === "ids") results.push(texts.map((t) => (Array.isArray(t) ? predictor.tokenizer.lookup(predictor.tokenizer.givenTokens(t)) : predictor.tokenizer.encode(t))));
    else if (call.method === "tokens") results.push(texts.map((t) => predictor.tokenizer.tokens(t)));
    else throw new Error(`unknown method ${call.method}`);
  } catch (error) {
    results.push({ error: `${error.name}: ${error.message}` });
  }
}
process.stdout.write(toPythonJson(results) + "\n");
