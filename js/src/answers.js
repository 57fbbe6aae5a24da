/**
 * The answer contract (`keras_seq.contracts.answers`): one object per text, the same fields in
 * the same order as every Python runtime gives.
 *  - classify: {label, probabilities: {label: p}}
 *  - tag: {tokens, tags}
 *  - lm: {tokens_scored, loss, perplexity}; generation: {continuation}
 *  - seq2seq: {output, score}
 *  - a text that could not be answered: {error}
 */
export const RESERVED_LABELS = ["<PAD>", "<UNK>"];

export function classifyAnswer(probabilities, labels) {
  let best = 0;
  for (let i = 1; i < probabilities.length; i++) if (probabilities[i] > probabilities[best]) best = i;
  const table = {};
  labels.forEach((name, i) => {
    if (!RESERVED_LABELS.includes(name)) table[name] = probabilities[i];
  });
  return { label: labels[best], probabilities: table };
}

export function tagAnswer(tokens, tagIds, labels) {
  return { tokens: [...tokens], tags: tagIds.slice(0, tokens.length).map((i) => labels[i]) };
}

export function lmAnswer(loss, count) {
  return { tokens_scored: count, loss, perplexity: Math.exp(loss) };
}

export function generateAnswer(continuation) {
  return { continuation };
}

export function seq2seqAnswer(tokens, score) {
  return { output: [...tokens], score };
}

export function errorAnswer(message) {
  return { error: message };
}
