/**
 * Benchmark workers: one child process per engine configuration (model file, LM head, threads),
 * driven over stdin/stdout with one JSON object per line. Separate processes give each engine its
 * own peak RSS and let the benchmark interleave the engines' repetitions on a noisy machine,
 * with only one worker measuring at a time.
 *
 * Protocol: the worker loads, then prints a {@link WorkerReady}; each {@link WorkerTestRequest}
 * is answered with a {@link WorkerTestResult} (and, by our engine, each {@link WorkerGenerationRequest}
 * with a {@link GenerationMeasurement}); an empty object asks it to print a {@link WorkerExit} and exit. bench/llama-cpp-worker.mjs speaks it for node-llama-cpp;
 * {@link serveSessionWorker} speaks it for our engine.
 */
import { spawn } from 'child_process';
import type { ChildProcessByStdio } from 'child_process';
import { createInterface } from 'readline';
import type { Readable, Writable } from 'stream';
import { BitNetModel } from '../engine/model';
import { measureGeneration, measureSessionTest } from './measure';
import type { BenchTestKind, GenerationMeasurement } from './measure';

/** The worker's first line, once its model is loaded and a context is open. */
export interface WorkerReady {
  ready: true;
  /** Milliseconds from starting to load the model to a ready session (context). */
  loadMs: number;
  /** What runs the model: our kernel ISA, or the llama.cpp release. */
  backend: string;
  threads: number;
  /** Our engine only: vocabulary size, BOS id, and weight bytes read per decoded token. */
  vocab?: number;
  bosId?: number;
  weightBytesPerToken?: number;
  /** Our engine only: the share of the streamed weights in 2 MB pages (BitNetModel.hugePageShare); null where the OS cannot tell. */
  hugePages?: number | null;
}

/** One test run from an empty cache. */
export interface WorkerTestRequest {
  kind: BenchTestKind;
  tokens: readonly number[];
}

/** Our engine only: generate `count` tokens with sampling ({@link measureGeneration}). */
export interface WorkerGenerationRequest {
  generate: number;
}

export interface WorkerTestResult {
  tokensPerSecond: number;
}

/** The last line: the peak resident set of the worker process. */
export interface WorkerExit {
  maxRssBytes: number;
}

/** Settings of our engine's worker ({@link serveSessionWorker}). */
export interface SessionWorkerConfig {
  /** Bit-plane model file. */
  file: string;
  threads: number;
  /** Kernel ISA; default: the best this CPU runs. */
  isa?: string;
  /** KV cache capacity in tokens. */
  contextSize: number;
}

/** A running worker process. */
export class BenchWorker {
  private readonly pending: { resolve: (value: unknown) => void; reject: (error: Error) => void }[] = [];
  private failure: Error | null = null;
  /** Settles when the process has exited. */
  private readonly exited: Promise<void>;

  private constructor(private readonly child: ChildProcessByStdio<Writable, Readable, null>, readonly label: string) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const waiter = this.pending.shift();
      if (!waiter) return;
      try {
        waiter.resolve(JSON.parse(line));
      } catch {
        waiter.reject(new Error(`${label}: unexpected output: ${line}`));
      }
    });
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.failure = new Error(`${label}: worker exited (${code ?? signal})`);
        for (const waiter of this.pending.splice(0)) waiter.reject(this.failure);
        resolve();
      });
    });
  }

  /**
   * Starts `node args...` (stderr passed through) and waits for its {@link WorkerReady}.
   * @param label names the worker in errors.
   */
  static async start(label: string, args: readonly string[]): Promise<{ worker: BenchWorker; ready: WorkerReady }> {
    const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    const worker = new BenchWorker(child, label);
    const ready = await worker.next<WorkerReady>();
    return { worker, ready };
  }

  private next<T>(): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<T>((resolve, reject) => this.pending.push({ resolve: resolve as (value: unknown) => void, reject }));
  }

  private send(message: object): void {
    this.child.stdin.write(`${JSON.stringify(message)}\n`);
  }

  /** Runs one test and returns its tokens per second. */
  async run(kind: BenchTestKind, tokens: readonly number[]): Promise<number> {
    const answer = this.next<WorkerTestResult>();
    this.send({ kind, tokens } satisfies WorkerTestRequest);
    return (await answer).tokensPerSecond;
  }

  /** Our engine's workers only: generates `count` tokens with sampling (see {@link measureGeneration}). */
  async generate(count: number): Promise<GenerationMeasurement> {
    const answer = this.next<GenerationMeasurement>();
    this.send({ generate: count } satisfies WorkerGenerationRequest);
    return answer;
  }

  /**
   * Asks the worker to exit and returns its peak RSS in bytes once the process is gone: workers still
   * tearing down (llama.cpp's threads, a model's pages) held both vCPUs for 53-82 % of the off-CPU probe
   * that `npm run bench` runs after them, and lowered the read bandwidth measured there.
   */
  async close(): Promise<number> {
    const answer = this.next<WorkerExit>();
    this.send({});
    this.child.stdin.end();
    const { maxRssBytes } = await answer;
    await this.exited;
    return maxRssBytes;
  }

  /** Ends the worker at once (after an error elsewhere). */
  kill(): void {
    this.child.kill();
  }
}

/** Serves the worker protocol on stdin/stdout with our engine: BitNetModel + Session. */
export async function serveSessionWorker(config: SessionWorkerConfig): Promise<void> {
  const reply = (value: object) => process.stdout.write(`${JSON.stringify(value)}\n`);
  const started = performance.now();
  const model = await BitNetModel.load(config.file, { threads: config.threads, isa: config.isa, maxContext: config.contextSize });
  const session = model.createSession({ contextSize: config.contextSize });
  reply({
    ready: true,
    loadMs: performance.now() - started,
    backend: `bitnet-gen ${model.runtime.isa}`,
    threads: model.runtime.threads,
    vocab: model.vocab,
    bosId: model.tokenizer.bosId,
    weightBytesPerToken: model.weightBytesPerToken,
    hugePages: model.hugePageShare(),
  } satisfies WorkerReady);
  for await (const line of createInterface({ input: process.stdin })) {
    const request = JSON.parse(line) as Partial<WorkerTestRequest & WorkerGenerationRequest>;
    if (request.generate !== undefined) {
      reply(await measureGeneration(session, model.tokenizer.bosId, request.generate));
      continue;
    }
    if (request.kind === undefined || request.tokens === undefined) break;
    reply({ tokensPerSecond: await measureSessionTest(session, request.kind, request.tokens) } satisfies WorkerTestResult);
  }
  reply({ maxRssBytes: process.resourceUsage().maxRSS * 1024 } satisfies WorkerExit);
}
