/**
 * The decoding that runs beside the ONNX graphs, with the arithmetic of the Python side
 * (`keras_seq.serving.scoring` and `keras_seq.decoding`): CRF Viterbi and the beam search in
 * float32 (every operation rounded with Math.fround, as NumPy's float32 arrays round), ties to the
 * lower index, language-model scores in float64 with NumPy's pairwise summation.
 */
const f32 = Math.fround;
const NEG_INF = Number.NEGATIVE_INFINITY;

/**
 * Best tag path of one sentence (`keras_seq.serving.scoring.viterbi`).
 * @param {Float32Array} emissions (length x tags), row-major
 * @param {number} length tokens
 * @param {number} tags
 * @param {{transitions: Float32Array, start: Float32Array, end: Float32Array}} crf transitions (previous x current)
 * @returns {number[]} tag ids
 */
export function viterbi(emissions, length, tags, crf) {
  if (length === 0) return [];
  let score = new Float32Array(tags);
  for (let j = 0; j < tags; j++) score[j] = f32(emissions[j] + crf.start[j]);
  const pointers = [];
  for (let t = 1; t < length; t++) {
    const next = new Float32Array(tags);
    const pointer = new Int32Array(tags);
    for (let c = 0; c < tags; c++) {
      let best = f32(score[0] + crf.transitions[c]);
      let arg = 0;
      for (let p = 1; p < tags; p++) {
        const candidate = f32(score[p] + crf.transitions[p * tags + c]);
        if (candidate > best) {
          best = candidate;
          arg = p;
        }
      }
      pointer[c] = arg;
      next[c] = f32(best + emissions[t * tags + c]);
    }
    pointers.push(pointer);
    score = next;
  }
  for (let j = 0; j < tags; j++) score[j] = f32(score[j] + crf.end[j]);
  const path = [argmax(score, 0, tags)];
  for (let i = pointers.length - 1; i >= 0; i--) path.push(pointers[i][path[path.length - 1]]);
  return path.reverse();
}

/** The first index of the largest value in values[start, start + n) (NumPy's argmax; NaN wins). */
export function argmax(values, start, n) {
  let best = 0;
  for (let i = 1; i < n; i++) {
    const v = values[start + i];
    const b = values[start + best];
    if (v > b || (Number.isNaN(v) && !Number.isNaN(b))) best = i;
  }
  return best;
}

/** NumPy's pairwise summation of a float64 run (what `ndarray.sum` does along a contiguous axis). */
export function pairwiseSum(values, start = 0, n = values.length - start) {
  if (n < 8) {
    let s = 0;
    for (let i = 0; i < n; i++) s += values[start + i];
    return s;
  }
  if (n <= 128) {
    const r = new Float64Array(8);
    for (let k = 0; k < 8; k++) r[k] = values[start + k];
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let k = 0; k < 8; k++) r[k] += values[start + i + k];
    let s = r[0] + r[1] + (r[2] + r[3]) + (r[4] + r[5] + (r[6] + r[7]));
    for (; i < n; i++) s += values[start + i];
    return s;
  }
  let half = Math.floor(n / 2);
  half -= half % 8;
  return pairwiseSum(values, start, half) + pairwiseSum(values, start + half, n - half);
}

/**
 * Next-token losses of texts (`keras_seq.serving.scoring.lm_scores`): per text, the mean
 * negative log-likelihood of tokens 2..n given the ones before.
 * @param {Float32Array} logits (B x T x V)
 * @returns {{loss: number, count: number}[]}
 */
export function lmScores(logits, ids, lengths, width, vocab) {
  return lengths.map((n, b) => {
    if (n < 2) return { loss: 0, count: 0 };
    const picked = new Float64Array(n - 1);
    const shifted = new Float64Array(vocab);
    for (let t = 0; t < n - 1; t++) {
      const base = (b * width + t) * vocab;
      let max = NEG_INF;
      for (let v = 0; v < vocab; v++) max = Math.max(max, logits[base + v]);
      for (let v = 0; v < vocab; v++) shifted[v] = Math.exp(logits[base + v] - max);
      const logSum = Math.log(pairwiseSum(shifted));
      picked[t] = logits[base + Number(ids[b * width + t + 1])] - max - logSum;
    }
    const nll = -pairwiseSum(picked);
    return { loss: nll / (n - 1), count: n - 1 };
  });
}

/**
 * Greedy continuation (`keras_seq.serving.scoring.greedy_tokens`): <PAD> (id 0) is never chosen.
 * @param {Float32Array} first (B x V) logits after each prompt
 * @param {(tokens: number[], states: any) => Promise<[Float32Array, any]>} step
 * @returns {Promise<number[][]>} (B x length) ids
 */
export async function greedyTokens(first, vocab, step, states, length) {
  const batch = first.length / vocab;
  let last = Float32Array.from(first);
  const out = Array.from({ length: batch }, () => []);
  for (let i = 0; i < length; i++) {
    const tokens = [];
    for (let b = 0; b < batch; b++) {
      last[b * vocab] = NEG_INF;
      tokens.push(argmax(last, b * vocab, vocab));
      out[b].push(tokens[b]);
    }
    if (i + 1 < length) {
      const [logits, next] = await step(tokens, states);
      last = Float32Array.from(logits);
      states = next;
    }
  }
  return out;
}

/** `keras_seq.decoding.max_target_lengths`: floor(factor * S) + extra per source. */
export function maxTargetLengths(sourceLengths, factor, extra) {
  return sourceLengths.map((s) => Math.floor(s * factor) + extra);
}

/**
 * `keras_seq.decoding.class_tables`: classes as member lists, and each token's class.
 * @param {number[]} classes one class id per token
 */
export function classTables(classes) {
  const representatives = [...new Set(classes)].sort((a, b) => a - b);
  const columnOf = new Map(representatives.map((r, i) => [r, i]));
  const column = classes.map((c) => columnOf.get(c));
  const members = representatives.map(() => []);
  column.forEach((c, v) => members[c].push(v));
  return { members, column };
}

/**
 * `keras_seq.decoding.merge_classes` on rows (N x V), in place: each class's probability (the
 * sum over its members, float32) goes to its member of highest log-probability (the lower id on
 * ties); the other members get -inf.
 */
export function mergeClasses(logProbs, rows, vocab, tables) {
  const merged = new Float32Array(logProbs.length).fill(NEG_INF);
  for (let n = 0; n < rows; n++) {
    const base = n * vocab;
    for (const members of tables.members) {
      let best = NEG_INF;
      let first = -1;
      for (const v of members) {
        const x = logProbs[base + v];
        if (first < 0 || x > best) {
          best = x;
          first = v;
        }
      }
      const shift = Number.isFinite(best) ? best : 0;
      let sum = 0;
      for (const v of members) sum = f32(sum + f32(Math.exp(f32(logProbs[base + v] - shift))));
      const total = f32(shift + f32(Math.log(sum)));
      merged[base + first] = total;
    }
  }
  return merged;
}

/**
 * Beam search for B sources at once (`keras_seq.decoding.batch_beam_search`): the step sees
 * B*K rows, source-major; each step keeps per source the K candidates of highest
 * log p / length**alpha (length counts EOS; ties: the lower flat index); a finished beam stays
 * as one candidate of unchanged score; float32 throughout.
 * @param {(tokens: number[], states: any[]) => Promise<[Float32Array, any[]]>} step logProbs (B*K x V)
 * @param {(states: any[], rows: number[]) => any[]} gather the states' rows, in that order
 * @returns {Promise<{rows: number[][], scores: number[], logProbs: number[]}>}
 */
export async function batchBeamSearch(step, gather, states, maxLengths, options) {
  const { bosId, eosId, beamWidth: width, alpha: rawAlpha, banned = [0], classes = null } = options;
  const tables = classes ? classTables(classes) : null;
  const alpha = f32(rawAlpha);
  const batch = maxLengths.length;
  const steps = batch ? Math.max(...maxLengths) : 0;
  states = gather(states, Array.from({ length: batch * width }, (_, i) => Math.floor(i / width)));
  let scores = new Float32Array(batch * width).fill(NEG_INF);
  for (let b = 0; b < batch; b++) scores[b * width] = 0;
  let tokens = Array.from({ length: batch * width }, () => []);
  let lengths = new Int32Array(batch * width);
  let sawEos = new Uint8Array(batch * width);
  let finished = Uint8Array.from(scores, (s) => (Number.isFinite(s) ? 0 : 1));
  let previous = new Array(batch * width).fill(bosId);
  for (let t = 0; t < steps; t++) {
    const [raw, newStates] = await step(previous, states);
    let logProbs = Float32Array.from(raw);
    const vocab = logProbs.length / (batch * width);
    for (let r = 0; r < batch * width; r++) for (const id of banned) logProbs[r * vocab + id] = NEG_INF;
    if (tables) logProbs = mergeClasses(logProbs, batch * width, vocab, tables);
    const nextScores = new Float32Array(batch * width);
    const nextLengths = new Int32Array(batch * width);
    const nextSawEos = new Uint8Array(batch * width);
    const nextFinished = new Uint8Array(batch * width);
    const nextTokens = [];
    const parents = [];
    const chosen = [];
    for (let b = 0; b < batch; b++) {
      // the K best of this source's K*V candidates: (ranked desc, flat index asc)
      const top = [];
      for (let k = 0; k < width; k++) {
        const row = b * width + k;
        const newLength = lengths[row] + (finished[row] ? 0 : 1);
        const divisor = f32(Math.pow(f32(Math.max(newLength, 1)), alpha));
        for (let v = 0; v < vocab; v++) {
          const added = finished[row] ? (v === eosId ? 0 : NEG_INF) : logProbs[row * vocab + v];
          const total = f32(scores[row] + added);
          const ranked = f32(total / divisor);
          const flat = k * vocab + v;
          if (top.length === width && !(ranked > top[width - 1].ranked)) continue;
          let at = top.length;
          while (at > 0 && ranked > top[at - 1].ranked) at--;
          top.splice(at, 0, { ranked, total, flat, newLength });
          if (top.length > width) top.pop();
        }
      }
      // (a NaN never ranks above anything, so it can only come last, where NumPy's argsort puts it)
      top.forEach((c, k) => {
        const row = b * width + k;
        const parent = b * width + Math.floor(c.flat / vocab);
        const token = c.flat % vocab;
        const wasFinished = finished[parent] === 1;
        nextScores[row] = c.total;
        nextLengths[row] = c.newLength;
        nextSawEos[row] = sawEos[parent] || (!wasFinished && token === eosId) ? 1 : 0;
        const path = tokens[parent].slice();
        path[t] = wasFinished || token === eosId ? 0 : token;
        nextTokens[row] = path;
        nextFinished[row] = wasFinished || token === eosId || t + 1 >= maxLengths[b] || !Number.isFinite(c.total) ? 1 : 0;
        parents.push(parent);
        chosen.push(token);
      });
    }
    scores = nextScores;
    lengths = nextLengths;
    sawEos = nextSawEos;
    finished = nextFinished;
    tokens = nextTokens;
    states = gather(newStates, parents);
    previous = chosen;
    if (finished.every((f) => f === 1)) break;
  }
  const rows = [];
  const ranked = [];
  const logProbs = [];
  for (let b = 0; b < batch; b++) {
    const row = b * width;
    const count = lengths[row] - sawEos[row];
    rows.push(tokens[row].slice(0, count));
    ranked.push(f32(scores[row] / f32(Math.pow(f32(Math.max(lengths[row], 1)), alpha))));
    logProbs.push(scores[row]);
  }
  return { rows, scores: ranked, logProbs };
}
