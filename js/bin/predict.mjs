#!/usr/bin/env node
/**
 * node bin/predict.mjs EXPORT_DIR [--input FILE] [--generate] [--length N] [--int8] [--threads N]
 *
 * Reads JSON Lines of texts (one JSON string per line) from FILE or stdin and writes one JSON
 * answer per line to stdout: the lines `keras-seq predict EXPORT_DIR --input FILE` writes (same
 * fields, same order, Python's number format), so the two can be diffed. A line that is not a
 * JSON string gets {"error": ...} and the others are still answered (exit status 3); a bad export
 * or usage is one line on stderr (exit status 2).
 */
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { KerasSeqError, toPythonJson } from "../src/index.js";
import { errorAnswer } from "../src/answers.js";
import { readJsonlTexts } from "../src/jsonl.js";
import { loadPredictor } from "../src/node.js";

const BAD_INPUT = 2;
const PARTIAL = 3;
const USAGE = "usage: predict.mjs EXPORT_DIR [--input FILE] [--generate] [--length N] [--int8] [--threads N]";

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return new Uint8Array(Buffer.concat(chunks));
}

function errorText(error) {
  return `${error.name === "KerasSeqError" ? "ValueError" : error.name}: ${error.message}`;
}

/** Every text answered together; if that fails, each alone, so one bad text fails only itself. */
async function answerAll(predict, items) {
  const texts = items.filter((item) => typeof item === "string");
  let answers;
  try {
    answers = await predict(texts);
  } catch {
    answers = [];
    for (const text of texts) {
      try {
        answers.push((await predict([text]))[0]);
      } catch (error) {
        answers.push(errorAnswer(errorText(error)));
      }
    }
  }
  let k = 0;
  return items.map((item) => (typeof item === "string" ? answers[k++] : item));
}

/** Probabilities in label order (a JavaScript object would put integer-like labels first). */
function ordered(answer, labels) {
  if (!answer.probabilities || !labels) return answer;
  const probabilities = new Map(labels.filter((l) => l in answer.probabilities).map((l) => [l, answer.probabilities[l]]));
  return { ...answer, probabilities };
}

async function main() {
  let args;
  try {
    args = parseArgs({
      allowPositionals: true,
      options: {
        input: { type: "string" },
        generate: { type: "boolean", default: false },
        length: { type: "string" },
        int8: { type: "boolean", default: false },
        threads: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (error) {
    throw new KerasSeqError(`${error.message}\n${USAGE}`);
  }
  if (args.values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (args.positionals.length !== 1) throw new KerasSeqError(`expected one EXPORT_DIR\n${USAGE}`);
  const threads = args.values.threads === undefined ? undefined : Number(args.values.threads);
  if (threads !== undefined && !(Number.isInteger(threads) && threads > 0)) throw new KerasSeqError(`--threads must be a positive integer; got ${args.values.threads}`);
  const length = args.values.length === undefined ? null : Number(args.values.length);
  if (length !== null && !(Number.isInteger(length) && length >= 0)) throw new KerasSeqError(`--length must be a non-negative integer; got ${args.values.length}`);
  const file = args.values.input ?? "<stdin>";
  let bytes;
  if (args.values.input === undefined) bytes = await readStdin();
  else {
    try {
      bytes = new Uint8Array(await readFile(file));
    } catch (error) {
      throw new KerasSeqError(`${file}: ${error.code === "ENOENT" ? "missing (the --input file)" : `cannot be read (${error.code})`}`);
    }
  }
  const items = readJsonlTexts(bytes, file).map((item) => (typeof item === "string" ? item : errorAnswer(item.error)));
  const predictor = await loadPredictor(args.positionals[0], { int8: args.values.int8, threads });
  const predict = args.values.generate ? (texts) => predictor.generate(texts, length) : (texts) => predictor.predict(texts);
  const answers = await answerAll(predict, items);
  const failed = [];
  const lines = answers.map((answer, i) => {
    if ("error" in answer) failed.push(i + 1);
    return toPythonJson(ordered(answer, predictor.labels));
  });
  process.stdout.write(lines.join("\n") + "\n");
  if (failed.length) {
    const shown = failed.slice(0, 20).join(", ") + (failed.length > 20 ? " ..." : "");
    process.stderr.write(`predict.mjs: ${failed.length} of ${items.length} inputs got an error (line ${shown}); the others were answered\n`);
    return PARTIAL;
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    if (error instanceof KerasSeqError) {
      process.stderr.write(`predict.mjs: error: ${error.message}\n`);
      process.exitCode = BAD_INPUT;
    } else {
      process.stderr.write(`predict.mjs: unexpected error: ${error.stack ?? error}\n`);
      process.exitCode = 1;
    }
  },
);
