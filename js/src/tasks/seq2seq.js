/**
 * Encoder-decoders: the encoder graph once per chunk of texts, then the beam search over the
 * decoder-step graph (`keras_seq.serving.encoder_decoder.onnx_decode`).
 */
import { seq2seqAnswer } from "../answers.js";
import { BOS_ID, DECODER_STEP_FILE, EOS_ID } from "../contracts.js";
import { batchBeamSearch, maxTargetLengths } from "../decoding.js";
import { registerAnswers } from "./registry.js";

const STRESSED = /^([A-Z]+)[0-2]$/;

/** `keras_seq.contracts.vocab.stress_classes`: per target id, the first id of its stress-free form. */
export function stressClasses(tokens) {
  const first = new Map();
  return tokens.map((token, i) => {
    const match = STRESSED.exec(token);
    const plain = match ? match[1] : token;
    if (!first.has(plain)) first.set(plain, i);
    return first.get(plain);
  });
}

/** The rows of each tensor, in the order of `rows` (NumPy's tensor[rows]). */
function gatherRows(ort, tensors, rows) {
  return tensors.map((tensor) => {
    const size = tensor.data.length / tensor.dims[0];
    const data = new tensor.data.constructor(rows.length * size);
    rows.forEach((r, i) => data.set(tensor.data.subarray(r * size, (r + 1) * size), i * size));
    return new ort.Tensor(tensor.type, data, [rows.length, ...tensor.dims.slice(1)]);
  });
}

export default registerAnswers({
  name: "seq2seq",
  takesTokenLists: false,
  async answers(predictor, texts) {
    const ort = predictor.ort;
    const batch = predictor.tokenizer.encodeBatch(texts);
    const encoder = predictor.session;
    const encoded = await predictor.run(encoder, { ids: predictor.ids(batch) }, encoder.outputNames);
    const settings = predictor.info.decode;
    const width = Number(settings.beam);
    const stepGraph = predictor.extraSessions.get(DECODER_STEP_FILE);
    const carryNames = stepGraph.inputNames.filter((n) => n.startsWith("state_") || n === "attentional");
    const outputNames = ["log_probs", ...carryNames.map((n) => `${n}_out`)];
    // ids are never 0 inside a text (a "<PAD>" token is <UNK>), so the mask's row sums are the lengths
    const mask = new Uint8Array(batch.data.length);
    batch.data.forEach((id, i) => (mask[i] = id !== 0n ? 1 : 0));
    const beamRows = Array.from({ length: batch.rows * width }, (_, i) => Math.floor(i / width));
    const maskTensor = new ort.Tensor("bool", mask, [batch.rows, batch.width]);
    const fixedNames = ["memory", ...(encoded.keys ? ["keys"] : [])];
    const fixedTensors = gatherRows(ort, [...fixedNames.map((n) => encoded[n]), maskTensor], beamRows);
    const fixed = Object.fromEntries([...fixedNames, "memory_mask"].map((n, i) => [n, fixedTensors[i]]));
    const zeros = (like) => new ort.Tensor(like.type, new like.data.constructor(like.data.length), like.dims);
    const carry = carryNames.map((n) => encoded[n] ?? zeros(encoded.state_h));

    const step = async (tokens, states) => {
      const feeds = { token: new ort.Tensor("int64", BigInt64Array.from(tokens, (t) => BigInt(t)), [tokens.length]), ...fixed };
      carryNames.forEach((n, i) => (feeds[n] = states[i]));
      const result = await predictor.run(stepGraph, feeds, outputNames);
      return [result.log_probs.data, outputNames.slice(1).map((n) => result[n])];
    };
    const best = await batchBeamSearch(step, (states, rows) => gatherRows(ort, states, rows), carry,
      maxTargetLengths(batch.lengths, Number(settings.max_length_factor), Number(settings.max_length_extra)), {
        bosId: BOS_ID,
        eosId: EOS_ID,
        beamWidth: width,
        alpha: Number(settings.alpha),
        classes: settings.merge_stress ? stressClasses(predictor.labels) : null,
      });
    return best.rows.map((row, b) => seq2seqAnswer(row.map((i) => predictor.labels[i]), best.scores[b]));
  },
});
