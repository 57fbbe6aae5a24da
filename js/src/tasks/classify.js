/** Classification: probabilities over the labels and the likeliest label. */
import { classifyAnswer } from "../answers.js";
import { registerAnswers } from "./registry.js";

export default registerAnswers({
  name: "classify",
  takesTokenLists: false,
  async answers(predictor, texts) {
    const batch = predictor.tokenizer.encodeBatch(texts);
    const result = await predictor.run(predictor.session, { ids: predictor.ids(batch) }, [predictor.output]);
    const probabilities = result[predictor.output];
    const classes = probabilities.dims[1];
    return texts.map((_, i) => classifyAnswer(Array.from(probabilities.data.subarray(i * classes, (i + 1) * classes)), predictor.labels));
  },
});
