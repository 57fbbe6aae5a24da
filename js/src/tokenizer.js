/**
 * `TextTokenizer`: raw text -> tokens -> int64 ids, the JavaScript twin of
 * `keras_seq.serving.tokenizer_twin.TextTokenizer` (and so of the tokenizer inside the
 * SavedModel). The rules are documented once, in `keras_seq.pipelines.tokenize`:
 *  1. text is UTF-8; invalid bytes and lone surrogates become U+FFFD (`asText`);
 *  2. ASCII letters are lower-cased when `lower` (other letters are left alone);
 *  3. `<br />` variants become a space, each ASCII punctuation mark becomes a token, runs of
 *     ASCII whitespace separate tokens;
 *  4. word level: tokens are looked up in the vocabulary; char level: code points are;
 *  5. `max_len` keeps the first ("tail" truncation) or last ("head") tokens, and at word level
 *     splits only a window at the kept end when that window holds enough tokens;
 *  6. taggers with a character vocabulary: each word's first `max_word_len` code points;
 *  7. word keys: `lower_words` (ASCII) and `zero_digits` (1-9 -> 0) change the lookup key only.
 * Ids: 0 is padding, 1 is <UNK>; a text's token "<PAD>" is looked up as <UNK>.
 */
import {
  BR_PATTERN,
  PAD_ID,
  PUNCT_PATTERN,
  SPACE_PATTERN,
  UNK_ID,
  WINDOW_MARGIN,
  wordWindow,
} from "./contracts.js";
import { KerasSeqError } from "./errors.js";
import { asText, asciiLower, codePoints, firstCodePoints, lastCodePoints } from "./text.js";

export class TextTokenizer {
  /**
   * @param {object} spec the checked `tokenizer.json` (`parseTokenizerSpec`)
   * @param {string[]} vocabulary tokens by id
   * @param {string[] | null} charVocabulary characters by id (taggers with character features)
   */
  constructor(spec, vocabulary, charVocabulary = null) {
    this.spec = spec;
    this.level = spec.level;
    this.lower = spec.lower;
    this.maxLen = spec.max_len;
    this.truncateSide = spec.truncate;
    this.maxWordLen = spec.max_word_len;
    this.lowerWords = spec.level === "word" && spec.lower_words;
    this.zeroDigits = spec.level === "word" && spec.zero_digits;
    this.vocabulary = vocabulary;
    this.vocab = new Map(vocabulary.map((token, id) => [token, id]));
    this.charVocab = charVocabulary ? new Map(charVocabulary.map((token, id) => [token, id])) : null;
  }

  /** Rules 1-2. */
  clean(text, where = "text") {
    const value = asText(text, where);
    return this.lower ? asciiLower(value) : value;
  }

  /** Rules 1-3 and 5: the tokens of a text. */
  tokens(text, where = "text") {
    const value = this.clean(text, where);
    if (this.level === "char") {
      return codePoints(this.maxLen !== null ? this.keptEnd(value, this.maxLen) : value);
    }
    if (this.maxLen !== null) {
      const window = this.keptEnd(value, wordWindow(this.maxLen));
      const tokens = split(window);
      if (tokens.length >= this.maxLen + WINDOW_MARGIN || window.length === value.length) {
        return this.truncate(tokens);
      }
    }
    return this.truncate(split(value));
  }

  keptEnd(text, count) {
    return this.truncateSide === "tail" ? firstCodePoints(text, count) : lastCodePoints(text, count);
  }

  truncate(tokens) {
    if (this.maxLen === null) return tokens;
    return this.truncateSide === "tail" ? tokens.slice(0, this.maxLen) : tokens.slice(Math.max(0, tokens.length - this.maxLen));
  }

  /** Rule 4 (and 7): ids of tokens. */
  lookup(tokens) {
    return tokens.map((token) => {
      const id = this.vocab.get(this.level === "char" ? token : this.wordKey(token)) ?? UNK_ID;
      return id === PAD_ID ? UNK_ID : id;
    });
  }

  /** Rule 7: the vocabulary key of a word token. */
  wordKey(token) {
    let key = token;
    if (this.lowerWords) key = asciiLower(key);
    if (this.zeroDigits) key = key.replace(/[1-9]/g, "0");
    return key;
  }

  /** Rule 6: the character ids of each (already tokenized) word. */
  wordChars(tokens) {
    if (this.charVocab === null) throw new KerasSeqError("this tokenizer has no character vocabulary (char_vocab_file)");
    return tokens.map((token) =>
      codePoints(token)
        .slice(0, this.maxWordLen)
        .map((c) => {
          const id = this.charVocab.get(c) ?? UNK_ID;
          return id === PAD_ID ? UNK_ID : id;
        }),
    );
  }

  encode(text, where = "text") {
    return this.lookup(this.tokens(text, where));
  }

  /** Tokens split already (tagging corpora): rules 1-2 and 5 only. */
  givenTokens(tokens, where = "text") {
    return this.truncate(tokens.map((t, j) => this.clean(t, `${where}[${j}]`)));
  }

  /** Right-padded ids: {ids: BigInt64Array (rows x width), width, lengths}. */
  encodeBatch(texts, minLen = 1) {
    return padRows(texts.map((t) => this.encode(t)), minLen);
  }
}

/** Rule 3. */
export function split(text) {
  return text
    .replace(BR_PATTERN, " ")
    .replace(PUNCT_PATTERN, " $1 ")
    .replace(SPACE_PATTERN, " ")
    .split(" ")
    .filter((t) => t.length > 0);
}

/**
 * Rows of ids right-padded with 0 to max(minLen, longest).
 * @param {number[][]} rows
 * @returns {{data: BigInt64Array, rows: number, width: number, lengths: number[]}}
 */
export function padRows(rows, minLen = 1) {
  const width = Math.max(minLen, ...rows.map((r) => r.length));
  const data = new BigInt64Array(rows.length * width);
  rows.forEach((row, i) => row.forEach((id, j) => (data[i * width + j] = BigInt(id))));
  return { data, rows: rows.length, width, lengths: rows.map((r) => r.length) };
}

