/** Every task's answers, registered on import. */
import "./classify.js";
import "./lm.js";
import "./seq2seq.js";
import "./tag.js";

export { answersFor, registerAnswers } from "./registry.js";
