/** Language models: the loss and perplexity of a text (and greedy continuations, `generate`). */
import { lmAnswer } from "../answers.js";
import { lmScores } from "../decoding.js";
import { registerAnswers } from "./registry.js";

export default registerAnswers({
  name: "lm",
  takesTokenLists: false,
  async answers(predictor, texts) {
    const batch = predictor.tokenizer.encodeBatch(texts);
    const feeds = { ids: predictor.ids(batch), ...predictor.zeroStates(batch.rows) };
    const logits = (await predictor.run(predictor.session, feeds, [predictor.output]))[predictor.output];
    return lmScores(logits.data, batch.data, batch.lengths, batch.width, logits.dims[2]).map((s) => lmAnswer(s.loss, s.count));
  },
});
