/**
 * The file contracts of an export's `onnx/` folder, read as keras_seq.contracts reads them:
 * `tokenizer.json` (rules version 1), `model.json` (format version 1, with the SHA-256 of every
 * file beside it), vocabulary and label files. Every reader validates and throws one
 * `KerasSeqError` line naming the file and the field.
 */
import { KerasSeqError } from "./errors.js";

export const RULES_VERSION = 1;
export const FORMAT_VERSION = 1;
export const PAD = "<PAD>";
export const UNK = "<UNK>";
export const PAD_ID = 0;
export const UNK_ID = 1;
export const BOS_ID = 2;
export const EOS_ID = 3;
export const TOKENIZER_FILE = "tokenizer.json";
export const ONNX_INFO_FILE = "model.json";
export const ONNX_MODEL_FILE = "model.onnx";
export const DECODER_STEP_FILE = "decoder_step.onnx";
export const CHECKSUMS = "files";
// Rule 3's patterns (keras_seq.contracts.tokenizer spells them for TF's RE2 and Python's re;
// these are the same classes in JavaScript's syntax).
export const BR_PATTERN = /<[bB][rR][ \t\n\v\f\r]*\/?>/gu;
export const PUNCT_PATTERN = /([!-/:-@[-`{-~])/gu;
export const SPACE_PATTERN = /[ \t\n\v\f\r]+/gu;
export const WINDOW_CHARS_PER_TOKEN = 64;
export const WINDOW_MARGIN = 4;

/** Rule 5's bounded work at word level (keras_seq.contracts.tokenizer.word_window). */
export function wordWindow(maxLen) {
  return WINDOW_CHARS_PER_TOKEN * (maxLen + WINDOW_MARGIN);
}

/** Python's name of a JSON value's type, so messages read as keras-seq's do. */
export function pythonTypeName(value) {
  if (value === null) return "NoneType";
  if (Array.isArray(value)) return "list";
  if (typeof value === "boolean") return "bool";
  if (typeof value === "number") return Number.isInteger(value) ? "int" : "float";
  if (typeof value === "string") return "str";
  if (typeof value === "object") return "dict";
  return typeof value;
}

const TYPE_CHECKS = {
  str: (v) => typeof v === "string",
  int: (v) => typeof v === "number" && Number.isInteger(v),
  bool: (v) => typeof v === "boolean",
  null: (v) => v === null,
  list: (v) => Array.isArray(v),
  dict: (v) => v !== null && typeof v === "object" && !Array.isArray(v),
};

function pyRepr(value) {
  if (value === null) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "string") return `'${value}'`;
  return JSON.stringify(value);
}

/** One line naming the file and the field whose value has the wrong type. */
export function checkType(file, key, value, types, what) {
  if (!types.some((t) => TYPE_CHECKS[t](value))) {
    throw new KerasSeqError(`${file}: field '${key}' must be ${types.join(" or ")}; found ${pyRepr(value)} (${what})`);
  }
}

/** The UTF-8 text of a file's bytes, or one line: not UTF-8, empty. */
export function decodeText(bytes, file, what) {
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new KerasSeqError(`${file}: not UTF-8 text (byte ${firstInvalidUtf8(bytes)}; ${what})`);
  }
  if (!text.trim()) throw new KerasSeqError(`${file}: the file is empty (${what})`);
  return text;
}

/** A JSON object from a file's bytes, or one line: not UTF-8, not JSON, not an object. */
export function parseJsonObject(bytes, file, what) {
  const text = decodeText(bytes, file, what);
  let data;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new KerasSeqError(`${file}: not valid JSON (${error.message.split("\n")[0]}; ${what})`);
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new KerasSeqError(`${file}: expected a JSON object, found ${pythonTypeName(data)} (${what})`);
  }
  return data;
}

/**
 * The offset of the first byte that makes `bytes` invalid UTF-8 (Python's UnicodeDecodeError.start),
 * or -1 when they are valid.
 * @param {Uint8Array} bytes
 */
export function firstInvalidUtf8(bytes) {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    let need;
    let low = 0x80;
    let high = 0xbf;
    if (b < 0x80) {
      i += 1;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) low = 0xa0;
      if (b === 0xed) high = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) low = 0x90;
      if (b === 0xf4) high = 0x8f;
    } else return i;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined) return i;
      if (k === 1 ? c < low || c > high : c < 0x80 || c > 0xbf) return i;
    }
    i += need + 1;
  }
  return -1;
}

const TOKENIZER_FIELDS = {
  level: ["str"],
  lower: ["bool"],
  max_len: ["int", "null"],
  truncate: ["str"],
  vocab_file: ["str"],
  char_vocab_file: ["str", "null"],
  max_word_len: ["int"],
  lower_words: ["bool"],
  zero_digits: ["bool"],
  pad_id: ["int"],
  unk_id: ["int"],
  rules_version: ["int"],
  extra: ["dict"],
};
const TOKENIZER_DEFAULTS = {
  level: "word",
  lower: true,
  max_len: null,
  truncate: "tail",
  vocab_file: "vocab.txt",
  char_vocab_file: null,
  max_word_len: 20,
  lower_words: false,
  zero_digits: false,
  pad_id: PAD_ID,
  unk_id: UNK_ID,
  rules_version: RULES_VERSION,
  extra: {},
};
const TOKENIZER_REQUIRED = ["level", "vocab_file", "rules_version"];
const WHAT_TOKENIZER = "the tokenizer contract";

function isFileName(name) {
  return typeof name === "string" && name.length > 0 && !name.includes("/") && !name.includes("\\") && name !== "." && name !== "..";
}

/**
 * `tokenizer.json`, checked: unknown or missing fields, wrong types, an unknown rules version.
 * @returns {{level: string, lower: boolean, max_len: number|null, truncate: string, vocab_file: string,
 *   char_vocab_file: string|null, max_word_len: number, lower_words: boolean, zero_digits: boolean}}
 */
export function parseTokenizerSpec(bytes, file) {
  const data = parseJsonObject(bytes, file, WHAT_TOKENIZER);
  const unknown = Object.keys(data).filter((k) => !(k in TOKENIZER_FIELDS)).sort();
  if (unknown.length) throw new KerasSeqError(`${file}: unknown field(s) ${pyList(unknown)} (${WHAT_TOKENIZER})`);
  const missing = TOKENIZER_REQUIRED.filter((k) => !(k in data));
  if (missing.length) throw new KerasSeqError(`${file}: missing field(s) ${pyList(missing)} (${WHAT_TOKENIZER})`);
  const spec = { ...structuredClone(TOKENIZER_DEFAULTS), ...data };
  for (const [key, types] of Object.entries(TOKENIZER_FIELDS)) checkType(file, key, spec[key], types, WHAT_TOKENIZER);
  if (spec.rules_version !== RULES_VERSION) {
    throw new KerasSeqError(
      `${file}: tokenizer rules version ${spec.rules_version} is not supported by this version of ` +
        `keras-seq-runtime (rules version ${RULES_VERSION})`,
    );
  }
  const oneOf = (key, allowed) => {
    if (!allowed.includes(spec[key])) {
      throw new KerasSeqError(`${file}: field '${key}' must be one of ${pyTuple(allowed)}; found ${pyRepr(spec[key])}`);
    }
  };
  oneOf("level", ["word", "char"]);
  oneOf("truncate", ["tail", "head"]);
  if (spec.max_len !== null && spec.max_len <= 0) {
    throw new KerasSeqError(`${file}: field 'max_len' must be a positive integer or null; found ${spec.max_len}`);
  }
  if (spec.max_word_len <= 0) {
    throw new KerasSeqError(`${file}: field 'max_word_len' must be a positive integer; found ${spec.max_word_len}`);
  }
  if (spec.pad_id !== PAD_ID || spec.unk_id !== UNK_ID) {
    throw new KerasSeqError(`${file}: pad_id/unk_id must be ${PAD_ID}/${UNK_ID}; found ${spec.pad_id}/${spec.unk_id}`);
  }
  for (const key of ["vocab_file", "char_vocab_file"]) {
    if (spec[key] !== null && !isFileName(spec[key])) {
      throw new KerasSeqError(`${file}: field '${key}' must be a file name beside it; found ${pyRepr(spec[key])}`);
    }
  }
  return spec;
}

const MODEL_FIELDS = {
  task: ["str"],
  kind: ["str"],
  output: ["str"],
  inputs: ["list"],
  outputs: ["list"],
  labels_file: ["str", "null"],
};
const WHAT_MODEL = "the ONNX model's description";

/** `model.json`, checked: format version, required fields and their types, the checksum table. */
export function parseModelInfo(bytes, file) {
  const data = parseJsonObject(bytes, file, WHAT_MODEL);
  const version = "format_version" in data ? data.format_version : 1;
  if (version !== FORMAT_VERSION) {
    throw new KerasSeqError(
      `${file}: format_version ${pyRepr(version)} is not supported (this keras-seq-runtime reads ${FORMAT_VERSION})`,
    );
  }
  const missing = Object.keys(MODEL_FIELDS).filter((k) => !(k in data));
  if (missing.length) throw new KerasSeqError(`${file}: missing field(s) ${pyList(missing)} (${WHAT_MODEL})`);
  for (const [key, types] of Object.entries(MODEL_FIELDS)) checkType(file, key, data[key], types, WHAT_MODEL);
  const files = data[CHECKSUMS] ?? {};
  if (files === null || typeof files !== "object" || Array.isArray(files)) {
    throw new KerasSeqError(`${file}: field '${CHECKSUMS}' must be an object of file checksums`);
  }
  for (const name of Object.keys(files)) {
    if (!isFileName(name)) throw new KerasSeqError(`${file}: field '${CHECKSUMS}' names ${pyRepr(name)}, not a file beside it`);
  }
  for (const name of [data.labels_file, ...(data.graphs ?? [])]) {
    if (name !== null && name !== undefined && !isFileName(name)) {
      throw new KerasSeqError(`${file}: names ${pyRepr(name)}, which is not a file beside it`);
    }
  }
  return data;
}

const CHAR_RESERVED = new Map([
  [-1, PAD],
  [-2, UNK],
]);

/**
 * A vocabulary or label file: one entry per line, line number = id. `level` "char": lines are
 * `<code point>\t<printable form>`, with -1 / -2 for padding and <UNK>.
 * @param {Uint8Array} bytes
 * @param {string} file
 * @param {"word"|"char"|"label"} level
 * @returns {string[]} the tokens by id
 */
export function parseVocabulary(bytes, file, level) {
  const lines = decodeText(bytes, file, `a ${level} vocabulary file`).split("\n");
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  let tokens;
  if (level === "char") {
    tokens = lines.map((line, n) => {
      const field = line.split("\t", 1)[0];
      const key = /^[+-]?\d+$/.test(field.trim()) ? Number(field.trim()) : NaN;
      if (Number.isInteger(key) && key < 0 && CHAR_RESERVED.has(key)) return CHAR_RESERVED.get(key);
      if (Number.isInteger(key) && key >= 0 && key <= 0x10ffff) return String.fromCodePoint(key);
      throw new KerasSeqError(`${file}:${n + 1}: expected '<code point>\\t<char>'`);
    });
  } else {
    tokens = lines;
    tokens.forEach((token, n) => {
      if (!token || token.includes("\r")) throw new KerasSeqError(`${file}:${n + 1}: empty entry or stray carriage return`);
    });
  }
  if ((level === "word" || level === "char") && (tokens[0] !== PAD || tokens[1] !== UNK)) {
    throw new KerasSeqError(`${file}: lines 1-2 must be the reserved ${PAD} and ${UNK} entries`);
  }
  if (new Set(tokens).size !== tokens.length) throw new KerasSeqError(`${file}: vocabulary tokens must be unique`);
  return tokens;
}

function pyList(items) {
  return `[${items.map((s) => `'${s}'`).join(", ")}]`;
}

function pyTuple(items) {
  return `(${items.map((s) => `'${s}'`).join(", ")})`;
}
