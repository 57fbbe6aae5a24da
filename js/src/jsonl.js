/**
 * JSON Lines input as `keras-seq predict --input` reads it (keras_seq.serving.commands.read_jsonl_texts):
 * one JSON string per line; a line that holds anything else gets its own error, and the others
 * are answered.
 */
import { firstInvalidUtf8, pythonTypeName } from "./contracts.js";
import { KerasSeqError } from "./errors.js";

const STRICT = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * @param {Uint8Array} bytes the file's bytes
 * @param {string} file its name, for the error when it holds no line
 * @returns {Array<string | {error: string}>} a text per line, or that line's error
 */
export function readJsonlTexts(bytes, file) {
  const items = [];
  let start = 0;
  let number = 0;
  while (start < bytes.length) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    number += 1;
    let stop = end;
    while (stop > start && (bytes[stop - 1] === 0x0a || bytes[stop - 1] === 0x0d)) stop -= 1;
    items.push(parseLine(bytes.subarray(start, stop), number));
    start = end + 1;
  }
  if (!items.length) throw new KerasSeqError(`${file}: the --input file is empty (expected one JSON string per line)`);
  return items;
}

function parseLine(raw, number) {
  let text;
  try {
    text = STRICT.decode(raw);
  } catch {
    return { error: `line ${number}: not valid UTF-8 (byte ${firstInvalidUtf8(raw)}); write the text as a JSON string with \\u escapes` };
  }
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { error: `line ${number}: not valid JSON (${error.message.split("\n")[0]})` };
  }
  if (typeof value !== "string") return { error: `line ${number}: expected a JSON string, got ${pythonTypeName(value)}` };
  return value;
}
