/**
 * keras-seq-runtime: keras-seq's ONNX exports in JavaScript, with the same tokenizer and answers
 * as the Python `OnnxPredictor`. Platform entry points: `./node.js` (files, onnxruntime-node) and
 * `./web.js` (URLs, onnxruntime-web).
 */
export { KerasSeqError } from "./errors.js";
export { OnnxPredictor, checkTexts, inLengthChunks } from "./predictor.js";
export { TextTokenizer, split, padRows } from "./tokenizer.js";
export { viterbi, batchBeamSearch, lmScores, greedyTokens, mergeClasses } from "./decoding.js";
export { toPythonJson } from "./pyjson.js";
export { RULES_VERSION, FORMAT_VERSION, parseTokenizerSpec, parseModelInfo, parseVocabulary } from "./contracts.js";
