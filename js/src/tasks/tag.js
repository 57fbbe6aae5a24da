/** Tagging: one tag per token, by argmax or by CRF Viterbi beside the graph. */
import { tagAnswer } from "../answers.js";
import { argmax, viterbi } from "../decoding.js";
import { padRows } from "../tokenizer.js";
import { registerAnswers } from "./registry.js";

export default registerAnswers({
  name: "tag",
  takesTokenLists: true,

  /** Tokens per text and each text's per-token scores (tag probabilities, or the CRF's emissions). */
  async scores(predictor, texts) {
    const tokenizer = predictor.tokenizer;
    const tokens = texts.map((t) => (Array.isArray(t) ? tokenizer.givenTokens(t) : tokenizer.tokens(t)));
    const batch = padRows(tokens.map((row) => tokenizer.lookup(row)));
    const feeds = { ids: predictor.ids(batch) };
    if (tokenizer.charVocab !== null) {
      const words = tokens.map((row) => tokenizer.wordChars(row));
      const width = Math.max(1, ...words.flatMap((row) => row.map((w) => w.length)));
      const chars = new BigInt64Array(batch.rows * batch.width * width);
      words.forEach((row, i) => row.forEach((word, j) => word.forEach((id, k) => (chars[(i * batch.width + j) * width + k] = BigInt(id)))));
      feeds.chars = new predictor.ort.Tensor("int64", chars, [batch.rows, batch.width, width]);
    }
    const output = (await predictor.run(predictor.session, feeds, [predictor.output]))[predictor.output];
    const tags = output.dims[2];
    const scores = tokens.map((row, i) => output.data.slice(i * batch.width * tags, (i * batch.width + row.length) * tags));
    return { tokens, scores, tags };
  },

  async answers(predictor, texts) {
    const { tokens, scores, tags } = await this.scores(predictor, texts);
    return tokens.map((row, i) => {
      const n = row.length;
      const ids = predictor.crf ? viterbi(scores[i], n, tags, predictor.crf) : Array.from({ length: n }, (_, t) => argmax(scores[i], t * tags, tags));
      return tagAnswer(row, ids, predictor.labels);
    });
  },
});
