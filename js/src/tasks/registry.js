/**
 * Each task's answers, by task name (the JavaScript side of `keras_seq.serving.tasks`): a part
 * turns one chunk of texts into answers with the predictor's sessions and tokenizer.
 *
 * A part: {name, takesTokenLists, answers(predictor, texts): Promise<object[]>}, and for taggers
 * scores(predictor, texts).
 */
import { KerasSeqError } from "../errors.js";

const PARTS = new Map();

export function registerAnswers(part) {
  PARTS.set(part.name, part);
  return part;
}

export function answersFor(task, file = "model.json") {
  const part = PARTS.get(task);
  if (!part) {
    throw new KerasSeqError(`${file}: task '${task}' is not one this runtime answers (it knows ${[...PARTS.keys()].join(", ")})`);
  }
  return part;
}
