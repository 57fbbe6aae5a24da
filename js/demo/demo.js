/**
 * The demo page: loads an export's onnx/ folder (the `model` query parameter, default "model/")
 * into the package's web predictor on onnxruntime-web, and draws each answer for its task:
 * label probabilities as bars, tags as coloured spans over the tokens, a language model's score
 * and continuation, an encoder-decoder's output tokens (phonemes for G2P). Errors are shown, never
 * a blank answer.
 */
import * as ort from "onnxruntime-web";
import { loadPredictor, toPythonJson } from "./src/web.js";

const $ = (id) => document.getElementById(id);
const modelUrl = new URLSearchParams(location.search).get("model") ?? "model/";
ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
ort.env.wasm.numThreads = 1; // no cross-origin isolation needed on plain static hosting

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "style") node.style.cssText = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function hue(name) {
  let h = 0;
  for (const c of name) h = (h * 31 + c.codePointAt(0)) % 360;
  return h;
}

const DRAW = {
  classify(answer) {
    const entries = Object.entries(answer.probabilities);
    return entries.map(([label, p]) =>
      element("div", { class: `bar-row${label === answer.label ? " best" : ""}`, "data-label": label, "data-probability": String(p) },
        element("span", { class: "bar-label" }, label),
        element("span", { class: "bar", style: `width: ${(p * 60).toFixed(2)}%` }),
        element("span", { class: "bar-value" }, `${(p * 100).toFixed(1)} %`)),
    );
  },
  tag(answer) {
    return answer.tokens.map((token, i) =>
      element("span", { class: "token", "data-tag": answer.tags[i], title: answer.tags[i], style: `background: hsl(${hue(answer.tags[i])} 70% 85%)` },
        token, element("sub", {}, answer.tags[i])),
    );
  },
  lm(answer) {
    return [
      element("p", {}, `${answer.tokens_scored} tokens scored: ${answer.loss.toFixed(3)} nats per token, perplexity ${answer.perplexity.toFixed(2)}`),
      element("p", { class: "generated", "data-continuation": answer.continuation }, answer.continuation),
    ];
  },
  seq2seq(answer) {
    return [element("p", { class: "generated", "data-output": answer.output.join(" ") }, answer.output.join(" ")), element("p", {}, `score ${answer.score.toFixed(4)}`)];
  },
};

async function main() {
  let predictor;
  try {
    predictor = await loadPredictor(modelUrl, { ort });
  } catch (error) {
    showError(error);
    $("status").textContent = "The model could not be loaded.";
    return;
  }
  document.body.dataset.task = predictor.task;
  globalThis.kerasSeqDemo = { predictor }; // for the console, and benchmarks/bench_js_runtime.py
  $("status").textContent = `A ${predictor.task} model (${predictor.tokenizer.level} level). Type a text and press Answer.`;
  $("text").disabled = false;
  $("answer-button").disabled = false;
  $("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("answer").replaceChildren();
    $("json").textContent = "";
    $("error").hidden = true;
    document.body.dataset.state = "busy";
    try {
      const text = $("text").value;
      let [answer] = await predictor.predict([text]);
      if (predictor.task === "lm") answer = { ...answer, ...(await predictor.generate([text], 40))[0] };
      $("answer").replaceChildren(...DRAW[predictor.task](answer));
      $("json").textContent = toPythonJson(answer);
      document.body.dataset.state = "answered";
    } catch (error) {
      showError(error);
    }
  });
  document.body.dataset.state = "ready";
}

function showError(error) {
  $("error").textContent = error?.message ?? String(error);
  $("error").hidden = false;
  document.body.dataset.state = "error";
}

main();
