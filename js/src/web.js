/**
 * The browser (or any runtime with fetch): exports from a base URL, on onnxruntime-web.
 *
 *   import * as ort from "onnxruntime-web";
 *   import { loadPredictor } from "keras-seq-runtime/web";
 *   const predictor = await loadPredictor("/model/", { ort });
 */
import { KerasSeqError } from "./errors.js";
import { OnnxPredictor } from "./predictor.js";

/** Files under a base URL (an export's onnx/ folder served as static files). */
export function urlSource(baseUrl) {
  const base = new URL(baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`, globalThis.location?.href);
  return {
    describe: (name) => new URL(name, base).href,
    async read(name) {
      const url = new URL(name, base).href;
      let response;
      try {
        response = await fetch(url);
      } catch (error) {
        throw new KerasSeqError(`${url}: cannot be fetched (${error.message})`);
      }
      if (!response.ok) throw new KerasSeqError(`${url}: ${response.status === 404 ? "missing" : "cannot be fetched"} (HTTP ${response.status})`);
      return new Uint8Array(await response.arrayBuffer());
    },
  };
}

/**
 * @param {string} baseUrl the URL of an export's onnx/ folder
 * @param {{ort: any, threads?: number, int8?: boolean}} options `ort`: the onnxruntime-web module
 */
export async function loadPredictor(baseUrl, options) {
  if (!options?.ort) throw new KerasSeqError("loadPredictor(url, {ort}) needs the onnxruntime-web module as `ort`");
  return OnnxPredictor.load(urlSource(baseUrl), options.ort, { executionProviders: ["wasm"], ...options });
}

export * from "./index.js";
