/**
 * JSON as Python's `json.dumps(value, ensure_ascii=False)` writes it, so the Node CLI's lines and
 * `keras-seq predict`'s can be diffed: ", " and ": " separators, floats in Python's repr (the same
 * shortest round-trip digits as JavaScript, laid out as Python does: 1.0, 1e-05, 1.5e+16).
 * JavaScript has one number type, so which numbers are floats is told by their field
 * (`FLOAT_FIELDS`, keras_seq.contracts.answers.NUMBER_FIELDS); a Map is an object whose keys keep
 * their order (a plain object puts integer-like keys first).
 */
export const FLOAT_FIELDS = new Set(["probabilities", "loss", "perplexity", "score", "_scores"]);

/** Python's repr of a float. */
export function pythonFloat(x) {
  if (Number.isNaN(x)) return "NaN";
  if (x === Infinity) return "Infinity";
  if (x === -Infinity) return "-Infinity";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const [mantissa, exponentText] = Math.abs(x).toExponential().split("e");
  const exponent = Number(exponentText);
  const digits = mantissa.replace(".", "");
  const sign = x < 0 ? "-" : "";
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) return `${sign}0.${"0".repeat(-exponent - 1)}${digits}`;
    const whole = digits.slice(0, exponent + 1).padEnd(exponent + 1, "0");
    const fraction = digits.slice(exponent + 1) || "0";
    return `${sign}${whole}.${fraction}`;
  }
  const head = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  const absExponent = String(Math.abs(exponent)).padStart(2, "0");
  return `${sign}${head}e${exponent < 0 ? "-" : "+"}${absExponent}`;
}

/**
 * @param {unknown} value
 * @param {boolean} float whether numbers here are floats
 */
export function toPythonJson(value, float = false) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") return float || !Number.isInteger(value) ? pythonFloat(value) : String(value);
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "string") return JSON.stringify(value);
  if (ArrayBuffer.isView(value)) return toPythonJson(Array.from(value), float);
  if (Array.isArray(value)) return `[${value.map((v) => toPythonJson(v, float)).join(", ")}]`;
  const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
  return `{${entries.map(([k, v]) => `${JSON.stringify(String(k))}: ${toPythonJson(v, float || FLOAT_FIELDS.has(k))}`).join(", ")}}`;
}
