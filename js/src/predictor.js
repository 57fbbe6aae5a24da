/**
 * `OnnxPredictor`: raw text in, answers out, from an export's `onnx/` folder, on any ONNX
 * Runtime for JavaScript (onnxruntime-node, onnxruntime-web). The same answers as
 * `keras_seq.serving.OnnxPredictor`: the same tokenizer rules, the same batching of texts into
 * chunks of similar length (so ONNX Runtime sees the same inputs), the same decoding arithmetic.
 *
 * Files come from a *source*: {describe(name): string, read(name): Promise<Uint8Array>} (a folder
 * on Node, a base URL in the browser; `./node.js`, `./web.js`). Everything read is checked first:
 * `model.json`'s version and fields, the SHA-256 of every file it lists, the tokenizer contract
 * and the vocabularies; a fault is one `KerasSeqError` naming the file.
 */
import { answersFor } from "./tasks/index.js";
import {
  CHECKSUMS,
  ONNX_INFO_FILE,
  ONNX_MODEL_FILE,
  TOKENIZER_FILE,
  parseModelInfo,
  parseTokenizerSpec,
  parseVocabulary,
} from "./contracts.js";
import { KerasSeqError } from "./errors.js";
import { generateAnswer } from "./answers.js";
import { greedyTokens } from "./decoding.js";
import { TextTokenizer, padRows } from "./tokenizer.js";
import { codePointLength, describeType } from "./text.js";

export const CHUNK = 16; // the most texts one ONNX Runtime call runs (keras_seq.serving.predictor.CHUNK)
export const CHUNK_SPREAD = 1.5; // a chunk's longest text / its shortest, at most (CHUNK_SPREAD there)
export const MAX_BATCH = 64; // prompts per generation batch
export const MAX_TEXT_CHARS = 1 << 20; // longer texts are refused: a client's mistake, not work to do

async function sha256Hex(bytes) {
  const digest = await globalThis.crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Python's len(): code points of a string, items of a token list, bytes of a Uint8Array. */
function pythonLength(text) {
  return typeof text === "string" ? codePointLength(text) : text.length;
}

/**
 * `texts` checked: an array of strings (or UTF-8 bytes), or for taggers also of token arrays.
 * @returns {Array<string | Uint8Array | string[]>}
 */
export function checkTexts(texts, tokenLists = false) {
  if (typeof texts === "string" || !Array.isArray(texts)) {
    throw new KerasSeqError(typeof texts === "string" ? "`texts` must be an array of strings, not one string" : `\`texts\` must be an array of strings, got ${describeType(texts)}`);
  }
  texts.forEach((text, i) => {
    if (typeof text === "string" || text instanceof Uint8Array) {
      if (text.length > MAX_TEXT_CHARS) throw new KerasSeqError(`texts[${i}] is over the limit of ${MAX_TEXT_CHARS} characters`);
      return;
    }
    if (!Array.isArray(text)) throw new KerasSeqError(`texts[${i}] is ${describeType(text)}, expected a string`);
    if (!tokenLists) throw new KerasSeqError(`texts[${i}] is an array: token lists are answered by taggers only; send a string`);
    text.forEach((token, j) => {
      if (typeof token !== "string" && !(token instanceof Uint8Array)) {
        throw new KerasSeqError(`texts[${i}][${j}] is ${describeType(token)}, expected a token string`);
      }
    });
  });
  return texts;
}

/**
 * `answer(chunk)` over chunks of texts of similar length; results in the input order. Sorted by
 * length, a chunk ends at `size` texts or before a text longer than `spread` times its first,
 * as Python's `in_length_chunks` cuts them (so ONNX Runtime sees the same inputs).
 */
export async function inLengthChunks(texts, answer, size = CHUNK, spread = CHUNK_SPREAD) {
  const lengths = texts.map(pythonLength); // counted once: a string's length in code points is a walk over it
  const order = texts.map((_, i) => i).sort((a, b) => lengths[a] - lengths[b]);
  const out = new Array(texts.length);
  let chunk = [];
  const run = async () => {
    const results = await answer(chunk.map((i) => texts[i]));
    chunk.forEach((i, k) => (out[i] = results[k]));
  };
  for (const i of order) {
    if (chunk.length && (chunk.length >= size || lengths[i] > spread * Math.max(1, lengths[chunk[0]]))) {
      await run();
      chunk = [];
    }
    chunk.push(i);
  }
  if (chunk.length) await run();
  return out;
}

export class OnnxPredictor {
  /**
   * Reads and checks an export's `onnx/` folder and opens its graphs.
   * @param {{describe(name: string): string, read(name: string): Promise<Uint8Array>}} source
   * @param {any} ort the onnxruntime-node or onnxruntime-web module
   * @param {{threads?: number, int8?: boolean, executionProviders?: string[]}} options
   */
  static async load(source, ort, options = {}) {
    const infoFile = source.describe(ONNX_INFO_FILE);
    const info = parseModelInfo(await source.read(ONNX_INFO_FILE), infoFile);
    const files = new Map();
    for (const [name, digest] of Object.entries(info[CHECKSUMS] ?? {})) {
      let bytes;
      try {
        bytes = await source.read(name);
      } catch (error) {
        if (error instanceof KerasSeqError) throw new KerasSeqError(`${source.describe(name)}: missing, but listed in ${infoFile}`);
        throw error;
      }
      if ((await sha256Hex(bytes)) !== digest) {
        throw new KerasSeqError(
          `${source.describe(name)}: does not match its checksum in ${infoFile} (corrupted or changed after export); export the run again`,
        );
      }
      files.set(name, bytes);
    }
    const read = async (name) => files.get(name) ?? source.read(name);
    const part = answersFor(info.task, infoFile);
    const spec = parseTokenizerSpec(await read(TOKENIZER_FILE), source.describe(TOKENIZER_FILE));
    const vocabulary = parseVocabulary(await read(spec.vocab_file), source.describe(spec.vocab_file), spec.level);
    const chars = spec.char_vocab_file
      ? parseVocabulary(await read(spec.char_vocab_file), source.describe(spec.char_vocab_file), "char")
      : null;
    const labels = info.labels_file ? parseVocabulary(await read(info.labels_file), source.describe(info.labels_file), "label") : null;
    const quantized = info.int8?.graphs ?? {};
    if (options.int8 && !Object.keys(quantized).length) {
      throw new KerasSeqError(`${infoFile}: this export has no int8 graphs; export again with --int8`);
    }
    const sessionOptions = {
      executionProviders: options.executionProviders ?? ["cpu"],
      ...(options.threads ? { intraOpNumThreads: options.threads } : {}),
    };
    const open = async (name) => {
      const file = options.int8 ? quantized[name] : name;
      try {
        return await ort.InferenceSession.create(await read(file), sessionOptions);
      } catch (error) {
        throw new KerasSeqError(`${source.describe(file)}: ONNX Runtime cannot load it (${String(error.message ?? error).split("\n")[0]})`);
      }
    };
    const session = await open(ONNX_MODEL_FILE);
    const extra = new Map();
    for (const name of info.graphs ?? []) if (name !== ONNX_MODEL_FILE) extra.set(name, await open(name));
    return new OnnxPredictor({ ort, info, part, tokenizer: new TextTokenizer(spec, vocabulary, chars), labels, session, extra, source });
  }

  constructor({ ort, info, part, tokenizer, labels, session, extra, source }) {
    this.ort = ort;
    this.info = info;
    this.task = info.task;
    this.part = part;
    this.output = info.output;
    this.tokenizer = tokenizer;
    this.labels = labels;
    this.session = session;
    this.extraSessions = extra;
    this.source = source;
    const crf = info.crf;
    this.crf = crf
      ? { transitions: Float32Array.from(crf.transitions.flat()), start: Float32Array.from(crf.start), end: Float32Array.from(crf.end) }
      : null;
    const metadata = session.inputMetadata ?? [];
    this.stateNames = session.inputNames.filter((n) => n.startsWith("state_"));
    this.stateSizes = this.stateNames.map((n) => Number(metadata.find((m) => m.name === n)?.shape?.[1]));
  }

  /** The task's answers, one per text, in order (`keras_seq.contracts.answers`). */
  async predict(texts) {
    checkTexts(texts, this.part.takesTokenLists);
    return inLengthChunks(texts, (chunk) => this.part.answers(this, chunk));
  }

  /** Taggers: per text, its tokens' scores (tokens x tags, row-major Float32Array). */
  async tagScores(texts) {
    if (!this.part.scores) throw new KerasSeqError(`tagScores needs a tagger; this export is a ${this.task} model`);
    checkTexts(texts, true);
    return inLengthChunks(texts, async (chunk) => (await this.part.scores(this, chunk)).scores);
  }

  /** Language models: the greedy continuation of each prompt, `length` tokens. */
  async generate(texts, length = null) {
    if (this.task !== "lm") throw new KerasSeqError(`generate needs a language model; this export is a ${this.task} model`);
    checkTexts(texts);
    const count = Number(length ?? this.info.generate_length);
    if (!Number.isInteger(count) || count < 0) throw new KerasSeqError(`length must be a non-negative integer; got ${length}`);
    const out = [];
    for (let start = 0; start < texts.length; start += MAX_BATCH) out.push(...(await this.generateBatch(texts.slice(start, start + MAX_BATCH), count)));
    return out;
  }

  async generateBatch(texts, length) {
    const batch = this.tokenizer.encodeBatch(texts);
    const names = this.session.outputNames;
    const outputs = await this.run(this.session, { ids: this.ids(batch), ...this.zeroStates(batch.rows) }, names);
    const logits = outputs[names[0]];
    const vocab = logits.dims[2];
    const first = new Float32Array(batch.rows * vocab);
    batch.lengths.forEach((n, b) => first.set(logits.data.subarray((b * batch.width + Math.max(n - 1, 0)) * vocab, (b * batch.width + Math.max(n - 1, 0) + 1) * vocab), b * vocab));
    const step = async (tokens, states) => {
      const feeds = { ids: this.ids(padRows(tokens.map((t) => [t]))) };
      this.stateNames.forEach((n, i) => (feeds[n] = states[i]));
      const result = await this.run(this.session, feeds, names);
      return [result[names[0]].data, names.slice(1).map((n) => result[n])];
    };
    const rows = await greedyTokens(first, vocab, step, names.slice(1).map((n) => outputs[n]), length);
    const glue = this.tokenizer.level === "char" ? "" : " ";
    const vocabulary = this.tokenizer.vocabulary;
    return rows.map((row, b) => generateAnswer(batch.lengths[b] > 0 ? row.map((i) => (i > 1 ? vocabulary[i] : "")).join(glue) : ""));
  }

  /** An int64 (rows x width) tensor of padded ids (`padRows`). */
  ids(batch) {
    return new this.ort.Tensor("int64", batch.data, [batch.rows, batch.width]);
  }

  zeroStates(rows) {
    return Object.fromEntries(this.stateNames.map((n, i) => [n, new this.ort.Tensor("float32", new Float32Array(rows * this.stateSizes[i]), [rows, this.stateSizes[i]])]));
  }

  /** session.run with only the graph's inputs fed (a graph may not take every feed). */
  async run(session, feeds, outputs) {
    const wanted = Object.fromEntries(session.inputNames.filter((n) => n in feeds).map((n) => [n, feeds[n]]));
    return session.run(wanted, outputs);
  }
}
