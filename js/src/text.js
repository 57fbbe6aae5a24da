/**
 * Text as keras-seq's Python side sees it. Python strings are sequences of code points and the
 * tokenizer's rules count code points (truncation, windows, characters of words); JavaScript
 * strings are UTF-16 code units. These helpers count and cut by code points, and turn what a
 * JavaScript caller can hold into what Python would receive:
 * - a lone surrogate (a JS string can hold one, as a Python str from JSON's "\ud800" can; UTF-8
 *   cannot) becomes three U+FFFD, as `keras_seq.contracts.tokenizer.valid_text` does: its three
 *   generalized-UTF-8 bytes (ED A0 80 for U+D800) are each invalid, and each is replaced;
 * - bytes (Uint8Array) are decoded as UTF-8 with each invalid sequence replaced by U+FFFD
 *   (the WHATWG decoder and Python's errors="replace" both follow Unicode's "maximal subpart"
 *   practice, so they agree).
 */
import { KerasSeqError } from "./errors.js";

const REPLACING_DECODER = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/**
 * @param {unknown} text a string or UTF-8 bytes
 * @param {string} where what to name in the error (e.g. "texts[3]")
 * @returns {string} well-formed text
 */
export function asText(text, where = "text") {
  if (typeof text === "string") return toWellFormed(text);
  if (text instanceof Uint8Array) return REPLACING_DECODER.decode(text);
  throw new KerasSeqError(`${where} is ${describeType(text)}, expected a string`);
}

export function describeType(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? `a ${value.constructor?.name ?? "object"}` : `a ${typeof value}`;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function toWellFormed(text) {
  return text.isWellFormed?.() === true ? text : text.replace(LONE_SURROGATE, "\ufffd\ufffd\ufffd");
}

/** The number of code points in a well-formed string (Python's len). */
export function codePointLength(text) {
  let n = text.length;
  for (let i = 0; i < text.length - 1; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n -= 1;
        i += 1;
      }
    }
  }
  return n;
}

/** The UTF-16 index where code point number `count` starts (or text.length). */
function unitIndex(text, count) {
  let i = 0;
  for (let k = 0; k < count && i < text.length; k++) {
    const c = text.charCodeAt(i);
    i += c >= 0xd800 && c <= 0xdbff && i + 1 < text.length ? 2 : 1;
  }
  return i;
}

/** Python's text[:count]. */
export function firstCodePoints(text, count) {
  return text.slice(0, unitIndex(text, count));
}

/** Python's text[-count:] (count > 0). */
export function lastCodePoints(text, count) {
  const total = codePointLength(text);
  return total <= count ? text : text.slice(unitIndex(text, total - count));
}

/** Python's list(text): one string per code point. */
export function codePoints(text) {
  return Array.from(text);
}

/** Python's str.translate with the ASCII upper-case letters mapped to lower case. */
export function asciiLower(text) {
  return text.replace(/[A-Z]+/g, (s) => s.toLowerCase());
}
