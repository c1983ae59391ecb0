/**
 * `bitnet-gen bench`: prompt processing (pp) and text generation (tg) throughput, measured the
 * way llama-bench measures them, optionally next to a user-built bitnet.cpp llama-bench on a GGUF.
 */
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { Command } from 'commander';
import { BitNetModel } from '../engine/model';
import { benchTestName, formatHugePageShare, formatMarkdownTable, meanAndStddev, measureSessionTest, randomBenchTokens } from '../bench/measure';
import type { BenchTestKind } from '../bench/measure';
import { defaultThreadCount } from '../kernels';
import { CliError, write } from './io';
import type { CliIo } from './io';
import { integerIn, isaOption, integerList } from './options';
import { resolveModel } from './model-source';
import { formatBytes } from './progress';

/** One benchmark row. */
export interface BenchResult {
  engine: 'bitnet-gen' | 'bitnet.cpp';
  /** Kernel ISA (bitnet-gen) or the build's backend (bitnet.cpp). */
  backend: string;
  threads: number;
  /** "pp512" or "tg128", as llama-bench names tests. */
  test: string;
  /** Tokens per second of each repetition (bitnet-gen only). */
  samples: number[];
  avgTokensPerSecond: number;
  stddevTokensPerSecond: number;
}

interface BenchCliOptions {
  model?: string;
  prompt: number;
  gen: number;
  threads?: number[];
  repetitions: number;
  isa: string;
  json: boolean;
  bitnetCpp?: string;
  gguf?: string;
  mmap: boolean;
  verbose: boolean;
}

function row(engine: BenchResult['engine'], backend: string, threads: number, test: string, samples: number[]): BenchResult {
  const { mean, stddev } = meanAndStddev(samples);
  return { engine, backend, threads, test, samples, avgTokensPerSecond: mean, stddevTokensPerSecond: stddev };
}

/** pp and tg rows for one thread count; one untimed warm-up run precedes the timed ones. */
/** The decode roofline of one thread count: measured bandwidth / bytes read per token, and tg's share of it. */
export interface BenchRoofline {
  threads: number;
  readBytesPerSecond: number;
  weightBytesPerToken: number;
  rooflineTokensPerSecond: number;
  /** The tg test's mean tokens/s divided by the roofline, when a tg test ran. */
  tgFraction: number | null;
  /**
   * Per thread, the share of half a second the host took from it, measured after the tests
   * (`Runtime.measureOffCpu`): a decode step that needs every thread waits for whichever is stopped.
   */
  offCpu: number[];
  /** The share of the streamed weights the OS maps with 2 MB pages (BitNetModel.hugePageShare); null where it cannot tell. */
  hugePages: number | null;
}

async function benchThreads(file: string, threads: number, options: BenchCliOptions): Promise<{ rows: BenchResult[]; roofline: BenchRoofline }> {
  const context = options.prompt + options.gen + 1;
  const model = await BitNetModel.load(file, { threads, isa: options.isa, maxContext: context, noMmap: !options.mmap });
  const session = model.createSession({ contextSize: context });
  const tests: [BenchTestKind, number][] = [['pp', options.prompt], ['tg', options.gen]];
  const results: BenchResult[] = [];
  for (const [kind, count] of tests.filter(([, n]) => n > 0)) {
    const tokens = randomBenchTokens(count, model.tokenizer.bosId, model.vocab);
    const samples: number[] = [];
    for (let r = 0; r <= options.repetitions; r++) {
      const tokensPerSecond = await measureSessionTest(session, kind, tokens);
      if (r > 0) samples.push(tokensPerSecond);
    }
    results.push(row('bitnet-gen', model.runtime.isa, model.runtime.threads, benchTestName(kind, count), samples));
  }
  const readBytesPerSecond = model.runtime.measureReadBandwidth();
  const rooflineTokensPerSecond = readBytesPerSecond / model.weightBytesPerToken;
  const tg = options.gen > 0 ? results[results.length - 1] : undefined;
  const roofline: BenchRoofline = {
    threads: model.runtime.threads,
    readBytesPerSecond,
    weightBytesPerToken: model.weightBytesPerToken,
    rooflineTokensPerSecond,
    tgFraction: tg ? tg.avgTokensPerSecond / rooflineTokensPerSecond : null,
    offCpu: model.runtime.measureOffCpu().map((t) => t.fraction),
    hugePages: model.hugePageShare(),
  };
  return { rows: results, roofline };
}

function formatRoofline(r: BenchRoofline): string {
  const tg = r.tgFraction === null ? '' : `; tg reaches ${(100 * r.tgFraction).toFixed(1)} % of it`;
  const pages = r.hugePages === null ? '' : `; ${formatHugePageShare(r.hugePages)}`;
  return `${r.threads} threads: read bandwidth ${(r.readBytesPerSecond / 1e9).toFixed(1)} GB/s / ` +
    `${(r.weightBytesPerToken / 2 ** 20).toFixed(1)} MiB per token = decode roofline ${r.rooflineTokensPerSecond.toFixed(1)} tok/s${tg}; ` +
    `the host took ${r.offCpu.map((f) => `${(100 * f).toFixed(1)} %`).join(', ')} of the threads' time${pages}`;
}

interface LlamaBenchEntry {
  n_prompt: number;
  n_gen: number;
  n_threads: number;
  avg_ts: number;
  stddev_ts: number;
  samples_ts?: number[];
  backends?: string;
}

/** Runs bitnet.cpp's llama-bench with the same -p -n -t -r and reads its JSON output. */
function runLlamaBench(binary: string, gguf: string, threads: number[], options: BenchCliOptions): Promise<BenchResult[]> {
  const args = ['-m', gguf, '-p', String(options.prompt), '-n', String(options.gen), '-t', threads.join(','), '-r', String(options.repetitions), '-o', 'json'];
  return new Promise((resolve, reject) => {
    execFile(binary, args, { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) {
        reject(new CliError(`${binary} ${args.join(' ')} failed: ${(stderr.trim().split('\n').pop() ?? '') || error.message}`));
        return;
      }
      let entries: LlamaBenchEntry[];
      try {
        entries = JSON.parse(stdout) as LlamaBenchEntry[];
      } catch {
        reject(new CliError(`${binary} did not print llama-bench JSON (is it llama-bench?)`));
        return;
      }
      resolve(entries.map((e) => ({
        engine: 'bitnet.cpp',
        backend: e.backends ?? 'cpu',
        threads: e.n_threads,
        test: e.n_gen > 0 ? `tg${e.n_gen}` : `pp${e.n_prompt}`,
        samples: e.samples_ts ?? [],
        avgTokensPerSecond: e.avg_ts,
        stddevTokensPerSecond: e.stddev_ts,
      })));
    });
  });
}

/** The rows as a llama-bench style markdown table. */
export function formatBenchTable(modelLabel: string, results: BenchResult[]): string {
  const header = ['model', 'engine', 'backend', 'threads', 'test', 't/s'];
  const lines = results.map((r) => [modelLabel, r.engine, r.backend, String(r.threads), r.test,
    `${r.avgTokensPerSecond.toFixed(2)} ± ${r.stddevTokensPerSecond.toFixed(2)}`]);
  return formatMarkdownTable(header, lines, 3);
}

/** Runs `bench`. */
export async function runBench(options: BenchCliOptions, io: CliIo): Promise<void> {
  if (options.prompt === 0 && options.gen === 0) throw new CliError('nothing to measure: -p and -n are both 0');
  const gguf = options.gguf ?? (options.model?.toLowerCase().endsWith('.gguf') ? options.model : undefined);
  if (options.bitnetCpp && !gguf) throw new CliError('--bitnet-cpp needs a GGUF model: pass --model FILE.gguf or --gguf FILE.gguf');
  const file = await resolveModel(options.model, io);
  const threads = options.threads ?? [defaultThreadCount()];
  const results: BenchResult[] = [];
  const rooflines: BenchRoofline[] = [];
  for (const t of threads) {
    const { rows, roofline } = await benchThreads(file, t, options);
    results.push(...rows);
    rooflines.push(roofline);
    if (options.verbose) for (const r of rows) await write(io.stderr, `${r.test} t=${r.threads}: ${r.samples.map((s) => s.toFixed(2)).join(' ')} tok/s\n`);
  }
  if (options.bitnetCpp) results.push(...(await runLlamaBench(options.bitnetCpp, gguf!, threads, options)));
  const label = `${formatBytes(fs.statSync(file).size)} ${path.basename(file)}`;
  await write(io.stdout, options.json
    ? `${JSON.stringify({ model: file, results, rooflines })}\n`
    : `${formatBenchTable(label, results)}\n\n${rooflines.map(formatRoofline).join('\n')}\n`);
}

/** Adds the `bench` command. */
export function addBenchCommand(program: Command, io: CliIo): void {
  program.command('bench')
    .description('measure prompt processing (pp) and generation (tg) speed, like llama-bench')
    .option('-m, --model <model>', 'bit-plane model file, Hugging Face model folder, .gguf file, or hub repo id', 'microsoft/bitnet-b1.58-2B-4T')
    .option('-p, --prompt <n>', 'prompt tokens for the pp test (0 = skip)', integerIn(0), 512)
    .option('-n, --gen <n>', 'generated tokens for the tg test (0 = skip)', integerIn(0), 128)
    .option('-t, --threads <list>', 'thread counts, comma-separated (default: BITNET_THREADS, else the CPUs available)', integerList(1))
    .option('-r, --repetitions <n>', 'timed repetitions of each test (after one warm-up)', integerIn(1), 5)
    .addOption(isaOption())
    .option('--bitnet-cpp <path>', 'also run this bitnet.cpp llama-bench binary on the GGUF with the same settings')
    .option('--gguf <file>', 'the GGUF for --bitnet-cpp (default: --model when it is a .gguf)')
    .option('--no-mmap', 'read the weights into memory instead of mapping the file (slower start; the file may then change)')
    .option('--json', 'print one JSON object {model, results, rooflines}', false)
    .option('-v, --verbose', 'per-repetition numbers on stderr, stack traces on errors', false)
    .action((options: BenchCliOptions) => runBench(options, io));
}
