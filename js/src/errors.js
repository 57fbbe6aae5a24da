/**
 * The one error every entry point throws for bad input: a missing or damaged file, an unknown
 * version, a wrong field, a text that is not a string. Its message is one line that names the
 * file, line or field at fault, as keras_seq's `ContractError` does.
 */
export class KerasSeqError extends Error {
  /**
   * @param {string} message one line naming the file, line or field at fault
   */
  constructor(message) {
    super(message);
    this.name = "KerasSeqError";
  }
}
