// Unit tests of the package's pieces (node --test); the conformance against Python's answers on
// real exports runs from pytest (tests/js/).
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  KerasSeqError,
  TextTokenizer,
  batchBeamSearch,
  checkTexts,
  mergeClasses,
  parseModelInfo,
  parseTokenizerSpec,
  parseVocabulary,
  toPythonJson,
  viterbi,
} from "../src/index.js";
import { firstInvalidUtf8 } from "../src/contracts.js";
import { pairwiseSum } from "../src/decoding.js";
import { readJsonlTexts } from "../src/jsonl.js";
import { pythonFloat } from "../src/pyjson.js";
import { inLengthChunks } from "../src/predictor.js";
import { asText, codePointLength, firstCodePoints, lastCodePoints } from "../src/text.js";

const bytes = (s) => new TextEncoder().encode(s);

test("floats are written as Python's repr writes them", () => {
  const cases = [
    [1, "1.0"], [0, "0.0"], [-0, "-0.0"], [0.1, "0.1"], [1e-5, "1e-05"], [0.0001, "0.0001"], [1.5e-7, "1.5e-07"],
    [123.456, "123.456"], [1e16, "1e+16"], [1.2345e21, "1.2345e+21"], [9999999999999998, "9999999999999998.0"],
    [0.8262079358100891, "0.8262079358100891"], [-2.5e-10, "-2.5e-10"], [NaN, "NaN"], [-Infinity, "-Infinity"],
  ];
  for (const [value, text] of cases) assert.equal(pythonFloat(value), text, String(value));
  assert.equal(
    toPythonJson({ label: "pos", probabilities: { neg: 0, pos: 1 }, tokens_scored: 3, loss: 2 }),
    '{"label": "pos", "probabilities": {"neg": 0.0, "pos": 1.0}, "tokens_scored": 3, "loss": 2.0}',
  );
  assert.equal(toPythonJson(new Map([["2", 0.5], ["1", 0.5]]), true), '{"2": 0.5, "1": 0.5}');
  assert.equal(toPythonJson(["a\n\u0001\"é😀"]), '["a\\n\\u0001\\"é😀"]');
});

test("JSON Lines: every line gets its text or its own error", () => {
  const items = readJsonlTexts(new Uint8Array([...bytes('"a"\r\n42\n{x\n\n"'), 0xff, ...bytes('"\n"\\ud800"')]), "f");
  assert.equal(items[0], "a");
  assert.match(items[1].error, /^line 2: expected a JSON string, got int$/);
  assert.match(items[2].error, /^line 3: not valid JSON/);
  assert.match(items[3].error, /^line 4: not valid JSON/);
  assert.match(items[4].error, /^line 5: not valid UTF-8 \(byte 1\)/);
  assert.equal(items[5], "\ud800");
  assert.equal(items.length, 6);
  assert.throws(() => readJsonlTexts(new Uint8Array(), "in.jsonl"), /in.jsonl: the --input file is empty/);
});

test("UTF-8 validation finds the byte Python names", () => {
  assert.equal(firstInvalidUtf8(bytes("abc é 😀")), -1);
  assert.equal(firstInvalidUtf8(new Uint8Array([0x61, 0xc3, 0x28])), 1);
  assert.equal(firstInvalidUtf8(new Uint8Array([0xed, 0xa0, 0x80])), 0); // an encoded surrogate
  assert.equal(firstInvalidUtf8(new Uint8Array([0x61, 0xf0, 0x9f, 0x98])), 1); // cut short
});

test("text is counted and cut in code points, and made well-formed as Python does", () => {
  assert.equal(codePointLength("a😀b"), 3);
  assert.equal(firstCodePoints("a😀b", 2), "a😀");
  assert.equal(lastCodePoints("a😀b", 2), "😀b");
  assert.equal(asText("x\ud800y"), "x\ufffd\ufffd\ufffdy");
  assert.equal(asText(new Uint8Array([0x61, 0xff, 0x62])), "a\ufffdb");
  assert.throws(() => asText(5, "texts[2]"), /texts\[2\] is a number, expected a string/);
});

function tokenizer(spec, vocab = ["<PAD>", "<UNK>", "good", "movie", "!", "0", "00"], chars = null) {
  const full = parseTokenizerSpec(bytes(JSON.stringify({ vocab_file: "vocab.txt", rules_version: 1, ...spec })), "tokenizer.json");
  return new TextTokenizer(full, vocab, chars);
}

test("the tokenizer's rules: punctuation, <br />, ASCII-only lower-casing, truncation, word keys", () => {
  const words = tokenizer({ level: "word" });
  assert.deepEqual(words.tokens("Good MOVIE!<br />ÉCOLE\tx"), ["good", "movie", "!", "École", "x"]);
  assert.deepEqual(words.encode("good <PAD> zzz"), [2, 1, 1, 1, 1]); // "<", "pad", ">"
  assert.deepEqual(words.lookup(["good", "<PAD>", "movie"]), [2, 1, 3]); // a token "<PAD>" is <UNK>
  const tail = tokenizer({ level: "word", max_len: 2 });
  const head = tokenizer({ level: "word", max_len: 2, truncate: "head" });
  assert.deepEqual(tail.tokens("a b c d"), ["a", "b"]);
  assert.deepEqual(head.tokens("a b c d"), ["c", "d"]);
  assert.deepEqual(head.tokens("w ".repeat(5000) + "x y"), ["x", "y"]); // the window at the kept end
  const chars = tokenizer({ level: "char", max_len: 3, truncate: "head" }, ["<PAD>", "<UNK>", "😀"]);
  assert.deepEqual(chars.tokens("ab😀c"), ["b", "😀", "c"]);
  assert.deepEqual(chars.encode("ab😀c"), [1, 2, 1]);
  const keys = tokenizer({ level: "word", lower: false, lower_words: true, zero_digits: true });
  assert.deepEqual(keys.tokens("GOOD 42"), ["GOOD", "42"]);
  assert.deepEqual(keys.encode("GOOD 42 7"), [2, 6, 5]);
  const tagger = tokenizer({ level: "word", char_vocab_file: "chars.txt", max_word_len: 2 }, undefined, ["<PAD>", "<UNK>", "g", "o"]);
  assert.deepEqual(tagger.wordChars(["good", "x"]), [[2, 3], [1]]);
});

test("contract files are refused with one line naming the file and field", () => {
  const spec = (data) => () => parseTokenizerSpec(bytes(JSON.stringify(data)), "onnx/tokenizer.json");
  assert.throws(spec({ level: "word", vocab_file: "v.txt", rules_version: 2 }), /onnx\/tokenizer.json: tokenizer rules version 2 is not supported/);
  assert.throws(spec({ level: "sentence", vocab_file: "v.txt", rules_version: 1 }), /field 'level' must be one of/);
  assert.throws(spec({ level: "word", vocab_file: "../v.txt", rules_version: 1 }), /field 'vocab_file' must be a file name beside it/);
  assert.throws(spec({ level: "word", vocab_file: "v.txt", rules_version: 1, shiny: 1 }), /unknown field\(s\) \['shiny'\]/);
  assert.throws(spec({ level: "word", rules_version: 1 }), /missing field\(s\) \['vocab_file'\]/);
  assert.throws(spec({ level: "word", vocab_file: "v.txt", rules_version: 1, max_len: true }), /field 'max_len' must be int or null; found True/);
  assert.throws(() => parseTokenizerSpec(bytes("{"), "t.json"), /t.json: not valid JSON/);
  const info = (data) => () => parseModelInfo(bytes(JSON.stringify(data)), "model.json");
  const good = { task: "classify", kind: "classify", output: "probabilities", inputs: ["ids"], outputs: ["p"], labels_file: "labels.txt" };
  assert.equal(parseModelInfo(bytes(JSON.stringify(good)), "model.json").task, "classify");
  assert.throws(info({ ...good, format_version: 2 }), /model.json: format_version 2 is not supported/);
  assert.throws(info({ ...good, output: 7 }), /field 'output' must be str; found 7/);
  assert.throws(info({ ...good, files: { "../x": "0" } }), /names '..\/x', not a file beside it/);
  assert.throws(() => parseVocabulary(bytes("a\nb\n"), "vocab.txt", "word"), /vocab.txt: lines 1-2 must be the reserved <PAD> and <UNK> entries/);
  assert.throws(() => parseVocabulary(bytes("-1\t<PAD>\n-2\t<UNK>\nx\n"), "chars.txt", "char"), /chars.txt:3: expected/);
  assert.deepEqual(parseVocabulary(bytes("-1\t<PAD>\n-2\t<UNK>\n10\t\\n\n128512\t😀\n"), "chars.txt", "char"), ["<PAD>", "<UNK>", "\n", "😀"]);
  assert.throws(() => checkTexts("one string"), /must be an array of strings, not one string/);
  assert.throws(() => checkTexts(["ok", 5]), /texts\[1\] is a number, expected a string/);
  assert.throws(() => checkTexts([["a"]]), /token lists are answered by taggers only/);
  assert.throws(() => checkTexts([["a", null]], true), /texts\[0\]\[1\] is null, expected a token string/);
  assert.ok(new KerasSeqError("x") instanceof Error);
});

test("Viterbi, class merging and the beam search give the Python doctests' answers", async () => {
  // two tags; the transition 0 -> 1 is strongly preferred
  const crf = { transitions: Float32Array.from([0, 5, 0, 0]), start: Float32Array.from([0, 0]), end: Float32Array.from([0, 0]) };
  assert.deepEqual(viterbi(Float32Array.from([1, 0, 1, 0]), 2, 2, crf), [0, 1]);
  assert.deepEqual(viterbi(new Float32Array(0), 0, 2, crf), []);
  const merged = mergeClasses(Float32Array.from([0.4, 0.3, 0.3].map(Math.log)), 1, 3, { members: [[0], [1, 2]], column: [0, 1, 1] });
  assert.deepEqual(Array.from(merged, (x) => Math.round(Math.exp(x) * 1e4) / 1e4), [0.4, 0.6, 0]);
  const table = [[0.1, 0.6, 0.3], [0.1, 0.2, 0.7], [0.1, 0.2, 0.7]].map((row) => row.map(Math.log));
  const step = async (ids, states) => [Float32Array.from(ids.flatMap((i) => table[i])), states];
  const best = await batchBeamSearch(step, (s) => s, [], [5], { bosId: 0, eosId: 2, beamWidth: 2, alpha: 1 });
  assert.deepEqual(best.rows, [[1]]);
  assert.equal(Math.round(best.logProbs[0] * 1e4) / 1e4, -0.8675);
  // NumPy's pairwise summation, not a running sum (np.sum gives these; a running sum does not)
  const series = (n) => Float64Array.from({ length: n }, (_, i) => 0.1 * i + 1 / (i + 3));
  assert.equal(pairwiseSum(series(1000)), 49955.98746786553);
  assert.equal(pairwiseSum(series(4097)), 839072.9958359614);
});

test("texts are cut into chunks by length as Python cuts them (tests/serving/test_batching.py)", async () => {
  // lengths 1..40 in a shuffled order, an astral character counted once; the same cuts as Python's
  const lengths = [7, 1, 40, 3, 2, 10, 11, 16, 5, 24, 4, 6, 30, 8, 9, 12];
  const texts = lengths.map((n) => "\u{1F600}" + "x".repeat(n - 1));
  const seen = [];
  const answers = await inLengthChunks(texts, async (chunk) => {
    seen.push(chunk.map((t) => [...t].length));
    return chunk.map((t) => [...t].length * 2);
  });
  assert.deepEqual(seen, [[1], [2, 3], [4, 5, 6], [7, 8, 9, 10], [11, 12, 16], [24, 30], [40]]);
  assert.deepEqual(answers, lengths.map((n) => n * 2));
});
