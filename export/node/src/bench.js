#!/usr/bin/env node
// kdedge-device-bench for Node.js: the Python runtime's `python -m kdedge_runtime.bench`, with onnxruntime-node.
//   kdedge-device-bench STUDENT_BUNDLE [...] --data dev.tsv [--teacher TEACHER_INT8_BUNDLE] [--out device.json]
// Each bundle in a fresh process: load time and time to the first prediction, batch-1 and batched latency
// (p50/p90/p99, throughput) on the file's real inputs, the task metric on that file, bundle size, peak RSS; with
// --teacher, retention and speed-ups against it on this device. The report has the Python bench's schema
// (kdedge-device-report/1), so `kdedge bench --device-report` merges either.
import { fork } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { BundleError, readManifest } from "./bundle.js";
import { DataError, readLabelled } from "./data.js";
import { Classifier } from "./index.js";
import { METRICS, score } from "./metrics.js";

export const SCHEMA = "kdedge-device-report/1";
const HERE = fileURLToPath(import.meta.url);

// ------------------------------------------------------------------ the CPU (kdedge_runtime/cpu.py's verdict)
const WEIGHTS = { avx2: "uint8", avx512: "int8", avx512_vnni: "int8", arm64: "int8" };
// Quantization schemes that quantize activations on the fly, each range over the whole input tensor: a row's logits
// then depend on the other rows of its batch and their padding, so accuracy is scored one example at a time (as an
// app at the edge calls the bundle; the one score that does not depend on the batch). As kdedge_runtime's.
const DYNAMIC_SCHEMES = new Set(["dynamic", "qat"]);
const REPORTED_FLAGS = ["avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8",
  "amx_bf16", "asimd", "asimddp", "i8mm", "bf16"];
const ARM = ["aarch64", "arm64", "armv8l"];
const MACHINE = { x64: "x86_64", arm64: "aarch64", arm: "armv7l", ia32: "i686" };

// /proc/cpuinfo's fields, each key's first value (the first processor's); empty where there is no such file.
function cpuinfoFields() {
  const fields = new Map();
  if (!existsSync("/proc/cpuinfo")) return fields;
  for (const line of readFileSync("/proc/cpuinfo", "utf8").split("\n")) {
    const at = line.indexOf(":");
    const key = line.slice(0, at).trim();
    if (at > 0 && !fields.has(key)) fields.set(key, line.slice(at + 1).trim());
  }
  return fields;
}

function cpuinfo(key) {
  return cpuinfoFields().get(key) ?? null;
}

export function presetFor(machine, flags) {
  if (ARM.includes(machine)) return "arm64";
  if (flags.has("avx512_vnni") || flags.has("avx512vnni") || flags.has("avx_vnni")) return "avx512_vnni";
  if (flags.has("avx512bw") || flags.has("avx512f")) return "avx512";
  return "avx2";
}

function presetMismatch(preset, machine, flags) {
  const best = presetFor(machine, flags);
  if (!(preset in WEIGHTS) || WEIGHTS[preset] === WEIGHTS[best]) return null;
  const why = WEIGHTS[preset] === "uint8" ? "runs slower here than int8 weights"
    : "may lose accuracy here (without VNNI, u8 x s8 products can saturate)";
  return `int8 preset ${preset} (${WEIGHTS[preset]} weights) ${why}; this CPU (${machine}) suits ${best}: ` +
    `re-export with --preset ${best} (or --preset auto on this machine)`;
}

function readCpu() {
  const machine = MACHINE[process.arch] ?? process.arch;
  return [machine, new Set((cpuinfo("flags") ?? cpuinfo("Features") ?? "").split(/\s+/).filter(Boolean))];
}

// What tells apart two CPUs of one model name, as kdedge_runtime.cpu.cpu_identity says it.
function cpuIdentity() {
  const fields = cpuinfoFields();
  let identity;
  if (fields.has("cpu family") && fields.has("model")) {
    const stepping = fields.get("stepping") ?? "?";
    identity = `family ${fields.get("cpu family")} model ${fields.get("model")} stepping ${stepping}`;
  } else if (fields.has("CPU implementer") && fields.has("CPU part")) {
    identity = `implementer ${fields.get("CPU implementer")} part ${fields.get("CPU part")}`;
  } else return null;
  return identity + ((fields.get("flags") ?? "").split(/\s+/).includes("hypervisor") ? ", virtual machine" : "");
}

export function describeCpu() {
  const [machine, flags] = readCpu();
  return {
    model: cpuinfo("model name") ?? os.cpus()[0]?.model ?? machine, identity: cpuIdentity(), machine,
    logical_cpus: os.cpus().length,
    usable_cpus: os.availableParallelism ? os.availableParallelism() : os.cpus().length,
    memory_gb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    flags: Object.fromEntries(REPORTED_FLAGS.map((f) => [f, flags.has(f)])), int8_preset: presetFor(machine, flags),
    emulated: ARM.includes(machine) && cpuinfo("flags") !== null,
  };
}

function verdict(cpu) {
  return `int8 preset for this CPU: ${cpu.int8_preset} (${WEIGHTS[cpu.int8_preset]} weights; what ` +
    "`kdedge export --preset auto` picks on it)" +
    (cpu.emulated ? " — emulated: the CPU model and flags shown are the host's, and timings are not this " +
      "architecture's" : "");
}

// ------------------------------------------------------------------ timing (kdedge_runtime/timing.py)
async function measure(run, { warmup, min_runs: minRuns, min_time: minTime, max_runs: maxRuns }) {
  for (let i = 0; i < warmup; i += 1) await run();
  const times = [];
  let spent = 0;
  while (times.length < maxRuns && (times.length < minRuns || spent < minTime)) {
    const start = performance.now();
    await run();
    const elapsed = (performance.now() - start) / 1000;
    times.push(elapsed);
    spent += elapsed;
  }
  return times;
}

function percentile(sorted, q) { // linear interpolation, as numpy's default
  const at = (sorted.length - 1) * q, lo = Math.floor(at), hi = Math.ceil(at);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
}

function summarize(seconds, batchSize) {
  const ms = seconds.map((s) => s * 1000);
  const sorted = [...ms].sort((a, b) => a - b);
  const mean = ms.reduce((a, b) => a + b, 0) / ms.length;
  const std = ms.length > 1 ? Math.sqrt(ms.reduce((a, v) => a + (v - mean) ** 2, 0) / (ms.length - 1)) : 0;
  return { runs: ms.length, p50_ms: percentile(sorted, 0.5), p90_ms: percentile(sorted, 0.9),
    p99_ms: percentile(sorted, 0.99), mean_ms: mean, std_ms: std, throughput: mean > 0 ? (batchSize * 1000) / mean : null };
}

// ------------------------------------------------------------------ one bundle
function checkedLayout(manifest) {
  const where = "the bundle's manifest.json";
  const metrics = manifest.task.metrics;
  if (!Array.isArray(metrics) || !metrics.length || !metrics.every((m) => m in METRICS)) {
    throw new BundleError(`${where}: field 'task.metrics' must be a list of ${Object.keys(METRICS).join(", ")}`);
  }
  const recorded = manifest.file_layout ?? {};
  if (recorded === null || typeof recorded !== "object" || Array.isArray(recorded)) {
    throw new BundleError(`${where}: field 'file_layout' must be an object`);
  }
  const checks = {
    columns: (v) => Array.isArray(v) && v.length >= 2 && v.length <= 3
      && v.every((c) => typeof c === "string" || Number.isInteger(c)),
    header: (v) => typeof v === "boolean",
    label_values: (v) => v === null || (Array.isArray(v) && v.every((x) => typeof x === "string")),
  };
  for (const [key, ok] of Object.entries(checks)) {
    if (key in recorded && !ok(recorded[key])) throw new BundleError(`${where}: field 'file_layout.${key}' is malformed`);
  }
  return recorded;
}

function layoutOf(manifest, columns, header) {
  const recorded = checkedLayout(manifest);
  const cols = columns ?? recorded.columns;
  if (!cols) {
    throw new DataError("this bundle does not record its data file's columns (exported before kdedge recorded " +
      "them): give --columns TEXT[,PAIR],LABEL");
  }
  const labelValues = manifest.task.is_regression ? null
    : (recorded.label_values ?? (manifest.label_names.length ? manifest.label_names : null));
  return [cols.map((c) => (typeof c === "string" && /^\d+$/.test(c) ? Number(c) : c)),
    header ?? recorded.header ?? true, labelValues];
}

function folderBytes(dir) {
  return readdirSync(dir, { withFileTypes: true }).reduce((sum, e) => {
    const full = path.join(dir, e.name);
    return sum + (e.isDirectory() ? folderBytes(full) : e.isFile() ? statSync(full).size : 0);
  }, 0);
}

export async function measureBundle(job) {
  const start = performance.now();
  const classifier = await Classifier.load(job.bundle, job.threads ? { intraOpNumThreads: job.threads } : {});
  const loaded = performance.now();
  const { manifest } = classifier;
  const [columns, header, labelValues] = layoutOf(manifest, job.columns, job.header);
  let { texts, pairs, labels } = readLabelled(job.data, columns, header, labelValues);
  if (job.max_examples) {
    texts = texts.slice(0, job.max_examples);
    labels = labels.slice(0, job.max_examples);
    pairs = pairs ? pairs.slice(0, job.max_examples) : null;
  }
  if ((pairs !== null) !== classifier.isPair) {
    throw new DataError(`${job.data}: the bundle ${classifier.isPair ? "reads" : "does not read"} pairs, but the ` +
      `columns ${JSON.stringify(columns)} give ${pairs !== null ? "two texts" : "one text"}`);
  }
  await classifier.predict(texts[0], pairs ? pairs[0] : null);
  const first = performance.now();

  const features = texts.map((t, i) => classifier.encode(t, pairs ? pairs[i] : null));
  const latency = {};
  for (const size of [...new Set([1, job.batch_size])].sort((a, b) => a - b)) {
    const feeds = [];
    for (let i = 0; i < Math.max(1, features.length - size + 1); i += size) feeds.push(classifier.pad(features.slice(i, i + size)));
    let next = 0; // each timed call takes the next real batch: the file's length mix
    const times = await measure(() => classifier.session.run(feeds[next++ % feeds.length], ["logits"]), job);
    latency[String(size)] = summarize(times, size);
  }
  // what an app sees: predict() of one text (and pair), tokenization and decoding included
  let example = 0;
  const predict = summarize(await measure(() => {
    const i = example++ % texts.length;
    return classifier.predict(texts[i], pairs ? pairs[i] : null);
  }, job), 1);
  const evalBatchSize = DYNAMIC_SCHEMES.has(manifest.quantization?.scheme) ? 1 : job.batch_size;
  const logits = await classifier.logits(texts, pairs, { batchSize: evalBatchSize });
  const metrics = score(manifest.task.metrics, logits, labels, classifier.isRegression);
  const preset = manifest.quantization?.preset ?? null;
  return {
    ...(job.with_logits ? { logits: logits.map((row) => row.map((v) => Math.round(v * 1e6) / 1e6)) } : {}),
    name: path.basename(path.resolve(job.bundle)), role: job.role, path: job.bundle,
    model_sha256: manifest.files["model.onnx"].sha256, task: manifest.task.name,
    architecture: manifest.architecture ?? null, precision: manifest.precision ?? null,
    parameters: manifest.parameters ?? null, quantization_preset: preset, eval_batch_size: evalBatchSize,
    preset_warning: preset ? presetMismatch(preset, ...readCpu()) : null,
    size_mb: Math.round(folderBytes(job.bundle) / 1e3) / 1e3, metrics, main_metric: manifest.task.metrics[0],
    examples: texts.length, load_ms: loaded - start, first_prediction_ms: first - start,
    peak_rss_mb: Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10, latency, predict,
  };
}

async function guarded(job) {
  try {
    return await measureBundle(job);
  } catch (e) {
    if (e instanceof BundleError || e instanceof DataError || e instanceof TypeError || e instanceof RangeError) {
      return { error: `${e.name}: ${e.message}` };
    }
    throw e;
  }
}

function inFreshProcess(job) {
  return new Promise((resolve, reject) => {
    const child = fork(HERE, ["--worker"], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    child.once("message", resolve);
    child.once("error", reject);
    child.once("exit", (code) => { if (code) reject(new Error(`the bench worker exited with ${code}`)); });
    child.send(job);
  });
}

// ------------------------------------------------------------------ the report
function versions() {
  const require = createRequire(import.meta.url);
  const found = { node: process.versions.node };
  for (const [name, where] of [["kdedge-runtime", "../package.json"], ["onnxruntime-node", "onnxruntime-node/package.json"],
    ["@huggingface/tokenizers", "@huggingface/tokenizers/package.json"]]) {
    try { found[name] = require(where).version; } catch { /* not resolvable from here */ }
  }
  return found;
}

export async function run(bundles, data, { teacher = null, deviceName = null, columns = null, header = null,
  batchSize = 32, threads = null, warmup = 10, minRuns = 50, minTime = 2.0, maxRuns = 100000, maxExamples = null,
  isolation = "process", withLogits = false } = {}) {
  if (!existsSync(data)) throw new DataError(`data file not found: ${data}`);
  const settings = { batch_size: batchSize, threads, warmup, min_runs: minRuns, min_time: minTime, max_runs: maxRuns,
    max_examples: maxExamples, isolation };
  const rows = [];
  const jobs = (teacher ? [["teacher", teacher]] : []).concat(bundles.map((b) => ["student", b]));
  for (const [role, bundle] of jobs) {
    readManifest(bundle); // a bad bundle stops the run before anything is timed
    const job = { ...settings, bundle, role, data, columns, header, with_logits: withLogits };
    const row = isolation === "process" ? await inFreshProcess(job) : await guarded(job);
    if (row.error) throw new BundleError(`${bundle}: ${row.error}`);
    rows.push(row);
  }
  const tasks = [...new Set(rows.map((r) => r.task))];
  if (tasks.length > 1) throw new BundleError(`the bundles are for different tasks (${tasks.sort().join(", ")}); benchmark one task per report`);
  const base = teacher ? rows[0] : null;
  for (const row of rows) {
    if (!base) continue;
    const main = base.main_metric;
    row.retention = base.metrics[main] ? row.metrics[main] / base.metrics[main] : null;
    row.speedup_vs_teacher = Object.fromEntries(Object.keys(row.latency).filter((b) => b in base.latency)
      .map((b) => [b, base.latency[b].p50_ms / row.latency[b].p50_ms]));
  }
  const cpu = describeCpu();
  return {
    schema: SCHEMA, created: new Date().toISOString().replace(/\.\d+Z$/, "+00:00"),
    device: { name: deviceName ?? os.hostname() ?? cpu.model, cpu, os: `${os.type()}-${os.release()}-${os.arch()}`,
      versions: versions(), providers: ["CPUExecutionProvider"] },
    settings, data: { file: path.basename(data), sha256: createHash("sha256").update(readFileSync(data)).digest("hex"),
      rows: rows[0].examples },
    teacher: base ? base.name : null, bundles: rows,
  };
}

export function table(report) {
  const { cpu } = report.device;
  const size = String(report.settings.batch_size);
  const fmt = (v, digits) => (v === null || v === undefined ? "–" : v.toFixed(digits));
  const lines = [`Device: ${report.device.name}: ${cpu.model} (${cpu.machine}), ${cpu.usable_cpus} CPUs, ${cpu.memory_gb} GiB; ` +
    Object.entries(cpu.flags).filter(([, v]) => v).map(([f]) => f).join(", "), verdict(cpu),
  `Data: ${report.data.file} (${report.data.rows} rows); threads: ${report.settings.threads ?? "default"}`, "",
  `| bundle | precision | MB | metric | retention | p50 ms (b=1) | p99 ms (b=1) | predict() p50 ms | ex/s (b=${size}) | speed-up (b=1) | load ms | peak RSS MB |`,
  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"];
  for (const r of report.bundles) {
    const one = r.latency["1"], batched = r.latency[size] ?? one;
    const speedup = r.speedup_vs_teacher?.["1"];
    lines.push(`| ${r.name}${r.role === "teacher" ? " (teacher)" : ""} | ${r.precision} | ${r.size_mb.toFixed(2)} ` +
      `| ${r.metrics[r.main_metric].toFixed(4)} | ${fmt(r.retention, 3)} | ${one.p50_ms.toFixed(3)} | ${one.p99_ms.toFixed(3)} ` +
      `| ${fmt(r.predict?.p50_ms, 3)} ` +
      `| ${batched.throughput.toFixed(0)} | ${speedup === undefined ? "–" : `${speedup.toFixed(1)}×`} | ${r.load_ms.toFixed(0)} | ${r.peak_rss_mb} |`);
  }
  const warnings = report.bundles.filter((r) => r.preset_warning).map((r) => `warning: ${r.name}: ${r.preset_warning}`);
  return lines.concat(warnings.length ? ["", ...warnings] : []).join("\n");
}

const OPTIONS = {
  data: { type: "string" }, teacher: { type: "string" }, "device-name": { type: "string" },
  columns: { type: "string" }, "no-header": { type: "boolean" }, "batch-size": { type: "string" },
  threads: { type: "string" }, warmup: { type: "string" }, "min-runs": { type: "string" },
  "min-time": { type: "string" }, "max-examples": { type: "string" }, "one-process": { type: "boolean" },
  "with-logits": { type: "boolean" }, out: { type: "string" }, worker: { type: "boolean" },
};

function number(values, name, fallback, { integer = true, min = 1 } = {}) {
  if (values[name] === undefined) return fallback;
  const v = Number(values[name]);
  if (!Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min) {
    throw new RangeError(`--${name} must be ${integer ? "an integer" : "a number"} of at least ${min}, not '${values[name]}'`);
  }
  return v;
}

export async function main(argv = process.argv.slice(2)) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
  } catch (e) {
    console.error(`error: ${e.message}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.worker) { // a child of `run`: one job in, one result out
    process.once("message", async (job) => { process.send(await guarded(job), () => process.exit(0)); });
    return null;
  }
  try {
    if (!positionals.length || !values.data) throw new RangeError("usage: kdedge-device-bench BUNDLE [...] --data FILE [--teacher BUNDLE] [--out FILE]");
    const report = await run(positionals, values.data, {
      teacher: values.teacher ?? null, deviceName: values["device-name"] ?? null,
      columns: values.columns ? values.columns.split(",") : null, header: values["no-header"] ? false : null,
      batchSize: number(values, "batch-size", 32), threads: number(values, "threads", null),
      warmup: number(values, "warmup", 10, { min: 0 }), minRuns: number(values, "min-runs", 50),
      minTime: number(values, "min-time", 2.0, { integer: false, min: 0 }),
      maxExamples: number(values, "max-examples", null), isolation: values["one-process"] ? "none" : "process",
      withLogits: Boolean(values["with-logits"]),
    });
    if (values.out) {
      writeFileSync(`${values.out}.partial`, JSON.stringify(report, null, 1));
      renameSync(`${values.out}.partial`, values.out);
    }
    console.log(table(report));
    return 0;
  } catch (e) {
    if (e instanceof BundleError || e instanceof DataError || e instanceof RangeError) {
      console.error(`error: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === HERE) {
  main().then((code) => { if (code !== null) process.exitCode = code; });
}
