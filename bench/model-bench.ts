/**
 * Model benchmark (`npm run bench`): the synthetic 2B4T-shape model (generated, or reused from the
 * cache) through our public path (BitNetModel + Session, the default q4 LM head; the int8 and f16
 * heads once, for tg at the most threads) next to
 * the same weights in llama.cpp through node-llama-cpp (TQ2_0 and TQ1_0 GGUFs), like llama-bench:
 * pp (one batch of N tokens) and tg (N tokens one at a time) in tokens/s, mean ± sd over the
 * repetitions, with the ratio ours/llama.cpp per row; load time and peak RSS of every engine
 * process; the decode roofline (measured read bandwidth / weight bytes read per token) and the
 * fraction of it our tg reaches; and generate() with sampling, for the share of decode time spent
 * outside the native forward passes.
 *
 * Each engine configuration (model file, thread count) runs in its own worker process
 * (src/bench/workers.ts). Repetitions are interleaved: round r runs every test on every worker
 * before round r + 1, in an order rotated each round, so load from other work on a shared
 * machine spreads over all engines instead of biasing one. Round 0 is an untimed warm-up.
 *
 *   node build-ts/bench/model-bench.js [-p 128,512] [-n 128] [-t 1,2] [-r 3] [--json] [--skip-llama-cpp]
 */
import type { BenchResult } from '../src/cli/bench';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { pathToFileURL } from 'url';
import { Command, Option } from 'commander';
import { benchTestName, formatHugePageShare, formatMarkdownTable, meanAndStddev, randomBenchTokens } from '../src/bench/measure';
import type { BenchTestKind, GenerationMeasurement } from '../src/bench/measure';
import { BenchWorker, serveSessionWorker } from '../src/bench/workers';
import type { SessionWorkerConfig, WorkerReady } from '../src/bench/workers';
import { integerIn, integerList, isaOption } from '../src/cli/options';
import { formatBytes } from '../src/cli/progress';
import { DEFAULT_LM_HEAD, ensureConverted, LM_HEAD_FORMATS } from '../src/engine/convert';
import type { LmHeadFormat } from '../src/engine/convert';
import { ensureSyntheticModel, repoRoot } from '../src/synth/generate';
import type { SynthFormat } from '../src/synth/generate';

interface ModelBenchOptions {
  prompt: number[];
  gen: number[];
  threads: number[];
  repetitions: number;
  json: boolean;
  skipLlamaCpp: boolean;
  otherHeads: boolean;
  isa: string;
  seed: number;
  weightMib: number;
  worker?: string;
}

interface BenchTest {
  kind: BenchTestKind;
  tokens: number;
  name: string;
}

/** One engine configuration and what was measured on it. */
interface EngineRun {
  engine: 'bitnet-gen' | 'llama.cpp';
  /** "q4 head", "int8 head", "f16 head", "TQ2_0", "TQ1_0". */
  model: string;
  file: string;
  threads: number;
  tests: BenchTest[];
  worker: BenchWorker;
  ready: WorkerReady;
  /** Tokens/s of each timed repetition, by test name. */
  samples: Map<string, number[]>;
  /** Ours only: generate() runs with sampling, for the overhead outside native code. */
  generations: GenerationMeasurement[];
  maxRssBytes: number;
}

/** A row of the table: a CLI bench result, by engine and model file. */
interface ResultRow extends Omit<BenchResult, 'engine'> {
  engine: EngineRun['engine'];
  model: string;
  /** Ours only: our mean / llama.cpp's mean on the same test and threads, by llama.cpp model. */
  ratios: Record<string, number>;
}

interface BandwidthRow {
  threads: number;
  gbps: number;
}

/** What bench_kernels --only bandwidth measured: read bandwidth, and the time the host took from each thread. */
interface MachineState {
  bandwidth: BandwidthRow[];
  /** Per thread of the largest pool: the fraction of its time spent off the CPU (gaps over 2 us between clock reads). */
  offCpu: number[];
}

/** The LM head of our main rows (tg, roofline, generate()); the other formats run once beside it. */
const MAIN_HEAD_FORMAT: LmHeadFormat = DEFAULT_LM_HEAD;
const MAIN_HEAD = `${MAIN_HEAD_FORMAT} head`;

const LLAMA_CPP_FORMATS: { format: SynthFormat; model: string }[] = [
  { format: 'gguf-tq2_0', model: 'TQ2_0' },
  { format: 'gguf-tq1_0', model: 'TQ1_0' },
];

function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

function loadAverage(): string {
  return os.loadavg().map((v) => v.toFixed(2)).join(' ');
}

/** Streaming read bandwidth at 1..max(threads) threads, and off-CPU time, from bench_kernels --only bandwidth. */
function measureMachine(threads: readonly number[], weightMib: number): MachineState {
  const binary = path.join(repoRoot(), 'build-bench', 'bench_kernels');
  if (!fs.existsSync(binary)) throw new Error(`${binary} is missing: build it with \`npm run bench:kernels\` or \`npm run bench\``);
  const args = ['--only', 'bandwidth', '--json', '--threads', String(Math.max(...threads)), '--weight-mib', String(weightMib), '--seconds', '0.5'];
  const report = JSON.parse(execFileSync(binary, args, { encoding: 'utf8' })) as {
    results: { threads: number; gbps: number }[]; off_cpu: { fraction: number }[];
  };
  return { bandwidth: report.results.map((r) => ({ threads: r.threads, gbps: r.gbps })), offCpu: report.off_cpu.map((o) => o.fraction) };
}

async function startEngine(
  engine: EngineRun['engine'], model: string, file: string, threads: number, tests: BenchTest[], args: string[],
): Promise<EngineRun> {
  const label = `${engine} ${model} t=${threads}`;
  const { worker, ready } = await BenchWorker.start(label, args);
  const pages = typeof ready.hugePages === 'number' ? `, ${formatHugePageShare(ready.hugePages)}` : '';
  log(`${label}: loaded in ${ready.loadMs.toFixed(0)} ms (${ready.backend}, ${ready.threads} threads${pages})`);
  return { engine, model, file, threads, tests, worker, ready, samples: new Map(tests.map((t) => [t.name, []])), generations: [], maxRssBytes: 0 };
}

function ourWorkerArgs(config: SessionWorkerConfig): string[] {
  return [__filename, '--worker', JSON.stringify(config)];
}

function llamaCppWorkerArgs(file: string, threads: number, contextSize: number, batchSize: number): string[] {
  const entry = pathToFileURL(require.resolve('node-llama-cpp')).href;
  const script = path.join(repoRoot(), 'bench', 'llama-cpp-worker.mjs');
  return [script, entry, JSON.stringify({ model: file, threads, contextSize, batchSize })];
}

/** Runs every round; round 0 is the warm-up and is not recorded. */
async function runRounds(engines: EngineRun[], tests: BenchTest[], tokensFor: (test: BenchTest) => number[], repetitions: number): Promise<void> {
  for (let round = 0; round <= repetitions; round++) {
    log(`${round === 0 ? 'warm-up round' : `round ${round}/${repetitions}`} (load average ${loadAverage()})`);
    for (const test of tests) {
      const runners = engines.filter((e) => e.tests.includes(test));
      for (let i = 0; i < runners.length; i++) {
        const engine = runners[(i + round) % runners.length];
        const tokensPerSecond = await engine.worker.run(test.kind, tokensFor(test));
        if (round > 0) engine.samples.get(test.name)!.push(tokensPerSecond);
      }
    }
  }
}

/** The longest tg test's token count (0 without tg tests): the length of the generate() runs. */
function longestTg(tests: BenchTest[]): number {
  return Math.max(0, ...tests.filter((t) => t.kind === 'tg').map((t) => t.tokens));
}

/** One generate() of the longest tg length per repetition on each of our main-head engines. */
async function runGenerations(engines: EngineRun[], tests: BenchTest[], repetitions: number): Promise<void> {
  const longest = longestTg(tests);
  if (longest === 0) return;
  log(`generate() with sampling, ${longest} tokens x ${repetitions} (load average ${loadAverage()})`);
  for (let round = 0; round < repetitions; round++) {
    for (const engine of engines.filter((e) => e.engine === 'bitnet-gen' && e.model === MAIN_HEAD)) {
      engine.generations.push(await engine.worker.generate(longest));
    }
  }
}

interface OverheadRow {
  threads: number;
  tokens: number;
  generateTokensPerSecond: number;
  outsideNativeShare: number;
}

function overheadRows(engines: EngineRun[], tests: BenchTest[]): OverheadRow[] {
  const tokens = longestTg(tests);
  return engines.filter((e) => e.generations.length > 0).map((e) => ({
    threads: e.threads,
    tokens,
    generateTokensPerSecond: meanAndStddev(e.generations.map((g) => g.tokensPerSecond)).mean,
    outsideNativeShare: meanAndStddev(e.generations.map((g) => g.outsideNativeShare)).mean,
  }));
}

function resultRows(engines: EngineRun[]): ResultRow[] {
  const rows: ResultRow[] = [];
  for (const engine of engines) {
    for (const test of engine.tests) {
      const samples = engine.samples.get(test.name)!;
      const { mean, stddev } = meanAndStddev(samples);
      rows.push({ engine: engine.engine, model: engine.model, backend: engine.ready.backend, threads: engine.threads, test: test.name,
        samples, avgTokensPerSecond: mean, stddevTokensPerSecond: stddev, ratios: {} });
    }
  }
  for (const ours of rows.filter((r) => r.engine === 'bitnet-gen')) {
    for (const baseline of rows.filter((r) => r.engine === 'llama.cpp' && r.threads === ours.threads && r.test === ours.test)) {
      ours.ratios[baseline.model] = ours.avgTokensPerSecond / baseline.avgTokensPerSecond;
    }
  }
  return rows;
}

interface RooflineRow {
  threads: number;
  gbps: number;
  bytesPerToken: number;
  rooflineTokensPerSecond: number;
  test: string;
  tokensPerSecond: number;
  fraction: number;
}

/** Our main-head tg rows against bandwidth / bytes per token, with the higher of the two bandwidth measurements. */
function rooflineRows(engines: EngineRun[], rows: ResultRow[], machine: MachineState[]): RooflineRow[] {
  const ours = engines.find((e) => e.engine === 'bitnet-gen' && e.model === MAIN_HEAD)!;
  const bytesPerToken = ours.ready.weightBytesPerToken!;
  return rows.filter((r) => r.engine === 'bitnet-gen' && r.model === ours.model && r.test.startsWith('tg')).map((r) => {
    const gbps = Math.max(...machine.flatMap((m) => m.bandwidth).filter((b) => b.threads === r.threads).map((b) => b.gbps));
    const rooflineTokensPerSecond = (gbps * 1e9) / bytesPerToken;
    return { threads: r.threads, gbps, bytesPerToken, rooflineTokensPerSecond, test: r.test, tokensPerSecond: r.avgTokensPerSecond,
      fraction: r.avgTokensPerSecond / rooflineTokensPerSecond };
  });
}

function printReport(report: {
  rows: ResultRow[]; engines: EngineRun[]; roofline: RooflineRow[]; overhead: OverheadRow[]; machine: MachineState[];
  loadAverageStart: string; loadAverageEnd: string; repetitions: number; baselines: string[];
}): void {
  const out: string[] = [];
  out.push(`cpu: ${os.cpus()[0]?.model ?? 'unknown'}, ${os.cpus().length} logical CPUs; load average (1/5/15 min) at start ${report.loadAverageStart}, at end ${report.loadAverageEnd}`);
  out.push(`t/s: mean ± sd over ${report.repetitions} interleaved repetitions after one warm-up\n`);
  out.push(formatMarkdownTable(
    ['engine', 'model', 'backend', 'threads', 'test', 't/s', ...report.baselines.map((b) => `ours/${b}`)],
    report.rows.map((r) => [r.engine, r.model, r.backend, String(r.threads), r.test,
      `${r.avgTokensPerSecond.toFixed(2)} ± ${r.stddevTokensPerSecond.toFixed(2)}`,
      ...report.baselines.map((b) => (r.ratios[b] === undefined ? '' : `${r.ratios[b].toFixed(2)}x`))]),
    3));
  out.push('');
  out.push(formatMarkdownTable(
    ['engine', 'model', 'threads', 'load ms', 'peak RSS'],
    report.engines.map((e) => [e.engine, e.model, String(e.threads), e.ready.loadMs.toFixed(0), formatBytes(e.maxRssBytes)]),
    2));
  out.push('');
  const [before, after] = report.machine;
  out.push(`read bandwidth (bench_kernels --only bandwidth, before / after): ${before.bandwidth.map((b, i) =>
    `${b.threads}t ${b.gbps.toFixed(1)} / ${after.bandwidth[i].gbps.toFixed(1)} GB/s`).join(', ')}; the roofline uses the higher`);
  const percents = (offCpu: number[]): string => offCpu.map((f) => `${(100 * f).toFixed(1)}%`).join(', ');
  out.push(`time the host took from each thread (off-CPU, before / after): ${percents(before.offCpu)} / ${percents(after.offCpu)}\n`);
  out.push(formatMarkdownTable(
    ['threads', 'test', 'GB/s', 'bytes/token', 'roofline t/s', 'ours t/s', 'fraction'],
    report.roofline.map((r) => [String(r.threads), r.test, r.gbps.toFixed(1), formatBytes(r.bytesPerToken), r.rooflineTokensPerSecond.toFixed(2),
      r.tokensPerSecond.toFixed(2), `${(100 * r.fraction).toFixed(1)}%`]),
    0));
  if (report.overhead.length > 0) {
    out.push('\ngenerate() with the default sampling (JS samples, checks stops and detokenizes between native steps):\n');
    out.push(formatMarkdownTable(
      ['threads', 'tokens', 't/s', 'time outside native forward'],
      report.overhead.map((r) => [String(r.threads), String(r.tokens), r.generateTokensPerSecond.toFixed(2), `${(100 * r.outsideNativeShare).toFixed(2)}%`]),
      0));
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

async function runModelBench(options: ModelBenchOptions): Promise<void> {
  const loadAverageStart = loadAverage();
  const tests: BenchTest[] = [
    ...options.prompt.filter((n) => n > 0).map((n) => ({ kind: 'pp' as const, tokens: n, name: benchTestName('pp', n) })),
    ...options.gen.filter((n) => n > 0).map((n) => ({ kind: 'tg' as const, tokens: n, name: benchTestName('tg', n) })),
  ];
  if (tests.length === 0) throw new Error('nothing to measure: -p and -n are both 0');
  const contextSize = Math.max(...tests.map((t) => t.tokens)) + 1;
  const batchSize = Math.max(1, ...tests.filter((t) => t.kind === 'pp').map((t) => t.tokens));

  let started = Date.now();
  const formats: SynthFormat[] = ['hf', ...(options.skipLlamaCpp ? [] : LLAMA_CPP_FORMATS.map((f) => f.format))];
  const synthetic = ensureSyntheticModel({ preset: '2b4t', seed: options.seed, formats });
  log(`synthetic 2B4T model (seed ${options.seed}) ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${synthetic.dir}`);
  const otherHeads = options.otherHeads ? LM_HEAD_FORMATS.filter((f) => f !== MAIN_HEAD_FORMAT) : [];
  const heads: LmHeadFormat[] = [MAIN_HEAD_FORMAT, ...otherHeads];
  started = Date.now();
  const bitplane = new Map(heads.map((head) => [head, ensureConverted(synthetic.paths.hf!, { lmHead: head })]));
  log(`bit-plane files ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  const machine = [measureMachine(options.threads, options.weightMib)];
  const engines: EngineRun[] = [];
  try {
    for (const threads of options.threads) {
      const file = bitplane.get(MAIN_HEAD_FORMAT)!;
      engines.push(await startEngine('bitnet-gen', MAIN_HEAD, file, threads, tests,
        ourWorkerArgs({ file, threads, isa: options.isa, contextSize })));
      if (!options.skipLlamaCpp) {
        for (const { format, model } of LLAMA_CPP_FORMATS) {
          const gguf = synthetic.paths[format]!;
          engines.push(await startEngine('llama.cpp', model, gguf, threads, tests, llamaCppWorkerArgs(gguf, threads, contextSize, batchSize)));
        }
      }
    }
    for (const head of otherHeads) {
      // Once: the decode tests at the most threads, where the head's share of the bytes shows.
      const file = bitplane.get(head)!;
      const threads = Math.max(...options.threads);
      engines.push(await startEngine('bitnet-gen', `${head} head`, file, threads, tests.filter((t) => t.kind === 'tg'),
        ourWorkerArgs({ file, threads, isa: options.isa, contextSize })));
    }
    const ours = engines[0].ready;
    const tokens = new Map(tests.map((t) => [t.name, randomBenchTokens(t.tokens, ours.bosId!, ours.vocab!)]));
    await runRounds(engines, tests, (test) => tokens.get(test.name)!, options.repetitions);
    await runGenerations(engines, tests, options.repetitions);
    for (const engine of engines) engine.maxRssBytes = await engine.worker.close();
  } catch (error) {
    for (const engine of engines) engine.worker.kill();
    throw error;
  }
  machine.push(measureMachine(options.threads, options.weightMib));

  const rows = resultRows(engines);
  const roofline = rooflineRows(engines, rows, machine);
  const overhead = overheadRows(engines, tests);
  const loadAverageEnd = loadAverage();
  const baselines = options.skipLlamaCpp ? [] : LLAMA_CPP_FORMATS.map((f) => f.model);
  if (options.json) {
    process.stdout.write(`${JSON.stringify({
      cpu: os.cpus()[0]?.model, logicalCpus: os.cpus().length, loadAverageStart, loadAverageEnd, repetitions: options.repetitions,
      models: { dir: synthetic.dir, ...Object.fromEntries(engines.map((e) => [`${e.engine} ${e.model}`, e.file])) },
      engines: engines.map((e) => ({ engine: e.engine, model: e.model, backend: e.ready.backend, threads: e.threads, loadMs: e.ready.loadMs, maxRssBytes: e.maxRssBytes })),
      results: rows, machine, roofline, overhead,
    }, null, 2)}\n`);
  } else {
    printReport({ rows, engines, roofline, overhead, machine, loadAverageStart, loadAverageEnd, repetitions: options.repetitions, baselines });
  }
}

function main(argv: string[]): void {
  const program = new Command('model-bench')
    .description('pp/tg tokens/s, load time, peak RSS and decode roofline of the synthetic 2B4T model, ours next to llama.cpp (node-llama-cpp)')
    .option('-p, --prompt <list>', 'prompt sizes of the pp tests, comma-separated (0 = none)', integerList(0), [128, 512])
    .option('-n, --gen <list>', 'generated tokens of the tg tests, comma-separated (0 = none)', integerList(0), [128])
    .option('-t, --threads <list>', 'thread counts, comma-separated', integerList(1), [1, 2])
    .option('-r, --repetitions <n>', 'timed repetitions of each test, after one warm-up', integerIn(1), 3)
    .option('--json', 'print one JSON object instead of tables', false)
    .option('--skip-llama-cpp', 'measure only our engine (no GGUF generation, no node-llama-cpp)', false)
    .option('--no-other-heads', 'skip the runs of the other LM head formats (tg at the most threads)')
    .addOption(isaOption())
    .option('--seed <n>', 'seed of the synthetic model', integerIn(0), 1)
    .option('--weight-mib <n>', 'buffer size of the bandwidth measurement in MiB', integerIn(64), 1024)
    .addOption(new Option('--worker <config>', 'internal: serve our engine as a worker process').hideHelp())
    .parse(argv);
  const options = program.opts<ModelBenchOptions>();
  const run = options.worker !== undefined ? serveSessionWorker(JSON.parse(options.worker) as SessionWorkerConfig) : runModelBench(options);
  run.catch((error: unknown) => {
    process.stderr.write(`model-bench: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exitCode = 1;
  });
}

main(process.argv);
