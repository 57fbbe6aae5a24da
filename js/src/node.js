/**
 * Node: exports from the file system, on onnxruntime-node.
 *
 *   import { loadPredictor } from "keras-seq-runtime/node";
 *   const predictor = await loadPredictor("demo-out/export");
 *   console.log(await predictor.predict(["good , not bad at all"]));
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { ONNX_MODEL_FILE } from "./contracts.js";
import { KerasSeqError } from "./errors.js";
import { OnnxPredictor } from "./predictor.js";

/** An export directory or its `onnx/` folder -> the folder holding model.onnx. */
export function findOnnxDir(directory) {
  for (const candidate of [path.join(directory, "onnx"), directory]) {
    if (existsSync(path.join(candidate, ONNX_MODEL_FILE))) return candidate;
  }
  throw new KerasSeqError(`${directory}: no ONNX export there (expected ${path.join(directory, "onnx", ONNX_MODEL_FILE)})`);
}

/** Files of a folder, as `OnnxPredictor.load` reads them. */
export function folderSource(directory) {
  return {
    describe: (name) => path.join(directory, name),
    async read(name) {
      try {
        return new Uint8Array(await readFile(path.join(directory, name)));
      } catch (error) {
        const reason = error.code === "ENOENT" ? "missing" : `cannot be read (${error.code ?? error.message})`;
        throw new KerasSeqError(`${path.join(directory, name)}: ${reason}`);
      }
    },
  };
}

/**
 * @param {string} exportDir an export directory (or its onnx/ folder)
 * @param {{threads?: number, int8?: boolean, ort?: any}} options `ort`: an onnxruntime module
 *   (default: onnxruntime-node)
 * @returns {Promise<OnnxPredictor>}
 */
export async function loadPredictor(exportDir, options = {}) {
  const ort = options.ort ?? (await import("onnxruntime-node"));
  return OnnxPredictor.load(folderSource(findOnnxDir(exportDir)), ort, options);
}

export * from "./index.js";
