import * as fs from 'fs';
import * as path from 'path';
import { PassThrough } from 'stream';
import { ensureConverted } from '../src/engine/convert';
import { BitNetModel } from '../src/engine/model';
import { negativeLogLikelihood, perplexity } from '../src/cli/perplexity';
import { modelFilesToFetch } from '../src/cli/model-source';
import { formatBytes, ProgressBar } from '../src/cli/progress';
import { terminalSafe } from '../src/cli/io';
import { cli } from './cli-io';
import { FakeHub } from './hub-fake-server';
import { scratchDir, tinyModel } from './helpers/model-files';

let scratch: string;
let modelFile: string;
const savedEnv = { ...process.env };
// One thread: results do not depend on the count, and the tiny model gains nothing from more.
const RUN = ['-t', '1'];

beforeAll(() => {
  scratch = scratchDir('cli');
  process.env.BITNET_GEN_CACHE = path.join(scratch, 'converted');
  modelFile = ensureConverted(tinyModel().paths.hf!);
});

afterAll(() => {
  process.env = savedEnv;
  fs.rmSync(scratch, { recursive: true, force: true });
});

/** The one line a failing command prints. */
function errorLine(run: { code: number; stderr: string }): string {
  expect(run.code).not.toBe(0);
  expect(run.stderr.trim().split('\n')).toHaveLength(1);
  expect(run.stderr).not.toMatch(/\n\s+at /);
  return run.stderr.trim();
}

describe('bitnet-gen (default command)', () => {
  test('--help lists every generation option with its default', async () => {
    const { code, stdout } = await cli(['--help']);
    expect(code).toBe(0);
    for (const text of ['--max-tokens <n>', '(default: 256)', '--temperature <t>', '(default: 0.8)', '--top-k <k>', '(default: 40)',
      '--top-p <p>', '(default: 0.95)', '--min-p <p>', '(default: 0.05)', '--repeat-penalty', '--seed', '--stop', '--threads', '--ctx',
      '--raw', '--json', '--system', 'microsoft/bitnet-b1.58-2B-4T', 'chat', 'convert', 'info', 'pull', 'bench', 'perplexity']) {
      expect(stdout).toContain(text);
    }
  });

  test('--json prints one object; the same seed gives the same tokens; streaming prints the same text', async () => {
    const args = ['-m', modelFile, ...RUN, '--raw', '-n', '12', '--seed', '7', '--ignore-eos'];
    const first = await cli([...args, '--json', 'Once upon a time']);
    expect(first.code).toBe(0);
    const result = JSON.parse(first.stdout);
    expect(Object.keys(result).sort()).toEqual(['seed', 'stopReason', 'text', 'timings', 'tokens']);
    expect(result).toMatchObject({ seed: 7, stopReason: 'max-tokens' });
    expect(result.tokens).toHaveLength(12);
    expect(result.timings.generatedTokens).toBe(12);
    // 11 decode steps ran natively, inside the time the loop awaited them.
    expect(result.timings.nativeMs).toBeGreaterThan(0);
    expect(result.timings.nativeMs).toBeLessThanOrEqual(result.timings.forwardMs);
    expect(result.timings.forwardMs).toBeLessThanOrEqual(result.timings.generateMs);
    const again = JSON.parse((await cli([...args, '--json', 'Once upon a time'])).stdout);
    expect(again.tokens).toEqual(result.tokens);
    const streamed = await cli([...args, '--verbose', 'Once upon a time']);
    expect(streamed.stdout).toBe(`${result.text}\n`);
    expect(streamed.stderr).toMatch(/^model: .*\.bitnet \(\w+, 1 threads, context \d+\)\nprompt: \d+ tokens .* generated: 12 tokens .* tok\/s \([\d.]+ % outside native code\) \| stop: max-tokens \| seed: 7\n$/);
  });

  test('the prompt comes from stdin with "-" or when piped without one; chat and raw modes differ', async () => {
    const args = ['-m', modelFile, ...RUN, '-n', '6', '--temperature', '0', '--ignore-eos', '--json'];
    const fromArg = JSON.parse((await cli([...args, '--raw', 'piped prompt'])).stdout);
    const fromDash = JSON.parse((await cli([...args, '--raw', '-'], 'piped prompt')).stdout);
    const fromPipe = JSON.parse((await cli([...args, '--raw'], 'piped prompt')).stdout);
    expect(fromDash.tokens).toEqual(fromArg.tokens);
    expect(fromPipe.tokens).toEqual(fromArg.tokens);
    const chat = JSON.parse((await cli([...args, 'piped prompt'])).stdout);
    expect(chat.timings.promptTokens).toBeGreaterThan(fromArg.timings.promptTokens);
  });

  test('--stop ends the text before the stop string', async () => {
    const base = ['-m', modelFile, ...RUN, '--raw', '-n', '40', '--temperature', '0', '--ignore-eos', '--json', 'abc'];
    const full = JSON.parse((await cli(base)).stdout);
    const stop = full.text.slice(5, 7);
    const stopped = JSON.parse((await cli([...base, '--stop', 'zzzz-never', '--stop', stop])).stdout);
    expect(stopped.stopReason).toBe('stop-string');
    expect(stopped.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
  });

  test('user errors: one line on stderr, non-zero exit, no stack trace', async () => {
    expect(errorLine(await cli(['--bogus', 'x']))).toBe("bitnet-gen: unknown option '--bogus'");
    expect(errorLine(await cli(['-m', modelFile, '--top-p', '3', 'x']))).toMatch(/--top-p <p>.* argument '3' is invalid. expected a number in \[0, 1\]/);
    expect(errorLine(await cli(['-m', modelFile, '-n', '-2', 'x']))).toMatch(/--max-tokens/);
    expect(errorLine(await cli(['-m', path.join(scratch, 'missing.bitnet'), 'x']))).toMatch(/model '.*missing\.bitnet' not found/);
    expect(errorLine(await cli(['-m', path.join(__dirname, '..', 'package.json'), 'x']))).toMatch(/package\.json.*not a bitnet-gen model file/);
    const bad = path.join(scratch, 'bad.gguf');
    fs.writeFileSync(bad, 'not a gguf at all');
    expect(errorLine(await cli(['-m', bad, 'x']))).toMatch(/^bitnet-gen: .*bad\.gguf/);
    expect(errorLine(await cli(['-m', modelFile]))).toMatch(/no prompt/);
    expect(errorLine(await cli(['-m', modelFile, '--raw', '--system', 'x', 'y']))).toMatch(/--system needs chat mode/);
    expect(errorLine(await cli(['info']))).toMatch(/missing required argument 'model'/);
    const verbose = await cli(['-m', bad, '--verbose', 'x']);
    expect(verbose.code).toBe(1);
    expect(verbose.stderr).toMatch(/\n\s+at /);
  });
});

describe('bitnet-gen commands', () => {
  test('convert writes a bit-plane file; info describes it', async () => {
    const out = path.join(scratch, 'f16-head.bitnet');
    const converted = await cli(['convert', tinyModel().paths['gguf-i2_s']!, out, '--lm-head', 'f16']);
    expect(converted.code).toBe(0);
    expect(converted.stdout).toMatch(/^wrote .*f16-head\.bitnet \(.*, LM head f16\)\n$/);
    const info = await cli(['info', out, '-t', '1', '--isa', 'scalar']);
    expect(info.code).toBe(0);
    expect(info.stdout).toMatch(/architecture\s+BitNet b1\.58, 2 layers, hidden 256/);
    expect(info.stdout).toMatch(/LM head f16/);
    expect(info.stdout).toMatch(/tensors ternary-planes\s+14 /);
    expect(info.stdout).toMatch(/runtime\s+scalar kernels, 1 threads/);
    expect(info.stdout).toMatch(/memory\s+(\d+\.\d % of the streamed weights in 2 MB pages|the OS cannot tell the page size of the mapped weights)\n/);
    const json = JSON.parse((await cli(['info', modelFile, '--json'])).stdout);
    const model = await BitNetModel.load(modelFile, { threads: 1 });
    expect(json).toMatchObject({ lmHead: 'q4', weightBytesPerToken: model.weightBytesPerToken, config: model.config });
    expect(json.tokenizer.vocabSize).toBe(model.tokenizer.vocabSize);
    expect(json.hugePages === null || (json.hugePages >= 0 && json.hugePages <= 1)).toBe(true);
    // A flipped byte inside a tensor passes the header checks; --verify finds it.
    const corrupt = path.join(scratch, 'corrupt.bitnet');
    fs.copyFileSync(out, corrupt);
    const fd = fs.openSync(corrupt, 'r+');
    fs.writeSync(fd, Buffer.from([0x5a]), 0, 1, 64 + 10);
    fs.closeSync(fd);
    expect(errorLine(await cli(['info', corrupt, '--verify']))).toMatch(/checksum mismatch/);
    expect(errorLine(await cli(['convert', path.join(scratch, 'nope'), out]))).toMatch(/nope: no such file or folder/);
    expect(errorLine(await cli(['convert', tinyModel().paths.hf!, out, '--lm-head', 'f32']))).toMatch(/--lm-head.*Allowed choices are q4, int8, f16/);
  });

  test('bench measures pp and tg for each thread count, and runs a bitnet.cpp llama-bench alongside', async () => {
    const run = await cli(['bench', '-m', modelFile, '-p', '16', '-n', '4', '-r', '2', '-t', '1', '--json']);
    expect(run.code).toBe(0);
    const { results, rooflines } = JSON.parse(run.stdout);
    expect(results.map((r: { test: string }) => r.test)).toEqual(['pp16', 'tg4']);
    for (const r of results) {
      expect(r.samples).toHaveLength(2);
      expect(r.avgTokensPerSecond).toBeGreaterThan(0);
    }
    // The roofline: measured bandwidth over the bytes each decoded token reads.
    const [roof] = rooflines;
    const model = await BitNetModel.load(modelFile, { threads: 1 });
    expect(roof.threads).toBe(1);
    expect(roof.weightBytesPerToken).toBe(model.weightBytesPerToken);
    expect(roof.readBytesPerSecond).toBeGreaterThan(1e8);
    expect(roof.rooflineTokensPerSecond).toBeCloseTo(roof.readBytesPerSecond / roof.weightBytesPerToken, 6);
    expect(roof.tgFraction).toBeCloseTo(results[1].avgTokensPerSecond / roof.rooflineTokensPerSecond, 6);
    // The time the host took from each thread of the pool.
    expect(roof.offCpu).toHaveLength(1);
    expect(roof.offCpu[0]).toBeGreaterThanOrEqual(0);
    expect(roof.offCpu[0]).toBeLessThan(1);
    // The share of the model file in 2 MB pages, where the OS can tell.
    expect(roof.hugePages === null || (roof.hugePages >= 0 && roof.hugePages <= 1)).toBe(true);
    // A stand-in llama-bench that reports the arguments it was given.
    const fake = path.join(scratch, 'llama-bench');
    fs.writeFileSync(fake, `#!/usr/bin/env node
const a = process.argv.slice(2); const v = (k) => a[a.indexOf(k) + 1];
if (!a.includes('-m') || v('-o') !== 'json') process.exit(3);
console.log(JSON.stringify([{ n_prompt: +v('-p'), n_gen: 0, n_threads: +v('-t'), avg_ts: 1.5, stddev_ts: 0.1 },
  { n_prompt: 0, n_gen: +v('-n'), n_threads: +v('-t'), avg_ts: 2.5, stddev_ts: 0.2 }]));
`, { mode: 0o755 });
    const gguf = tinyModel().paths['gguf-i2_s']!;
    const side = await cli(['bench', '-m', gguf, '-p', '8', '-n', '2', '-r', '1', '-t', '1', '--bitnet-cpp', fake]);
    expect(side.code).toBe(0);
    expect(side.stdout).toMatch(/\| bitnet-gen \| \S+ +\| +1 \| +pp8 \|/);
    expect(side.stdout).toMatch(/\| bitnet\.cpp \| cpu +\| +1 \| +pp8 \| +1\.50 ± 0\.10 \|/);
    expect(side.stdout).toMatch(/\| bitnet\.cpp \| cpu +\| +1 \| +tg2 \| +2\.50 ± 0\.20 \|/);
    expect(errorLine(await cli(['bench', '-m', modelFile, '--bitnet-cpp', fake]))).toMatch(/--bitnet-cpp needs a GGUF/);
  });

  test('perplexity over all-logits windows equals one-token-at-a-time scoring', async () => {
    const model = await BitNetModel.load(modelFile, { threads: 1 });
    const text = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8').slice(0, 4000);
    const ctx = 32;
    const result = await perplexity(model, text, ctx, 2);
    expect(result.perChunk).toHaveLength(2);
    expect(result.scoredTokens).toBe(2 * (ctx - 1 - ctx / 2));
    // Reference: the same windows, fed one token at a time (with allLogits: every row from the
    // int8 head, as perplexity uses; a decode step's logits are exact only for the top rows).
    const tokens = model.tokenizer.encode(text, { addBos: false });
    let nll = 0;
    for (let c = 0; c < 2; c++) {
      const window = tokens.slice(c * ctx, (c + 1) * ctx);
      window[0] = model.tokenizer.bosId;
      const session = model.createSession({ contextSize: ctx });
      for (let j = 0; j < ctx - 1; j++) {
        const logits = await session.evaluate([window[j]], { allLogits: true });
        if (j >= ctx / 2) nll += negativeLogLikelihood(logits, 0, model.vocab, window[j + 1]);
      }
    }
    expect(result.perplexity).toBeCloseTo(Math.exp(nll / result.scoredTokens), 3);
    const textFile = path.join(scratch, 'text.txt');
    fs.writeFileSync(textFile, text);
    const run = await cli(['perplexity', modelFile, textFile, '-c', String(ctx), '--chunks', '2', '-t', '1', '--json']);
    expect(JSON.parse(run.stdout).perplexity).toBeCloseTo(result.perplexity, 6);
    expect(errorLine(await cli(['perplexity', modelFile, path.join(scratch, 'absent.txt')]))).toMatch(/cannot read .*absent\.txt: ENOENT/);
    expect(errorLine(await cli(['perplexity', modelFile, textFile, '-c', '4096', '-t', '1']))).toMatch(/fewer than one window of --ctx 4096/);
  });

  test('pull downloads from the hub (HF_ENDPOINT) and --model REPO runs the cached copy offline', async () => {
    const hub = await new FakeHub('test-org/tiny-bitnet', tinyModel().paths.hf!).start();
    try {
      Object.assign(process.env, { HF_ENDPOINT: hub.endpoint, HF_HOME: path.join(scratch, 'hf-home'), HF_HUB_OFFLINE: '0' });
      delete process.env.HF_HUB_CACHE;
      delete process.env.HF_TOKEN;
      const pulled = await cli(['pull', 'test-org/tiny-bitnet']);
      expect(pulled.code).toBe(0);
      const [snapshotDir, converted] = pulled.stdout.trim().split('\n');
      expect(snapshotDir).toBe(path.join(scratch, 'hf-home', 'hub', 'models--test-org--tiny-bitnet', 'snapshots', hub.commit));
      expect(fs.readdirSync(snapshotDir).sort()).toEqual(modelFilesToFetch(hub.fileNames).sort());
      // The conversion is cached beside the snapshot, in the repository's hub cache folder.
      expect(path.dirname(converted)).toBe(path.join(scratch, 'hf-home', 'hub', 'models--test-org--tiny-bitnet', 'bitnet-gen'));
      expect(converted).toMatch(/\.bitnet$/);
      process.env.HF_HUB_OFFLINE = '1';
      const offline = await cli(['-m', 'test-org/tiny-bitnet', ...RUN, '--raw', '-n', '3', '--json', 'hi']);
      expect(offline.code).toBe(0);
      expect(JSON.parse(offline.stdout).tokens).toHaveLength(JSON.parse(offline.stdout).timings.generatedTokens);
      expect(errorLine(await cli(['-m', 'test-org/absent', 'hi']))).toMatch(/HF_HUB_OFFLINE is set and test-org\/absent .* --model PATH/);
      process.env.HF_HUB_OFFLINE = '0';
      expect(errorLine(await cli(['pull', 'test-org/absent']))).toMatch(/HTTP 404 .*test-org\/absent.*no such repository/);
      expect(errorLine(await cli(['pull', 'not a repo']))).toMatch(/not a hub repository id/);
    } finally {
      await hub.stop();
    }
    const docsFolder = path.join(scratch, 'docs-only');
    fs.mkdirSync(docsFolder);
    fs.writeFileSync(path.join(docsFolder, 'README.md'), '# no weights here\n');
    const docsHub = await new FakeHub('test-org/docs-only', docsFolder).start();
    try {
      process.env.HF_ENDPOINT = docsHub.endpoint;
      expect(errorLine(await cli(['pull', 'test-org/docs-only']))).toBe('bitnet-gen: test-org/docs-only holds no safetensors or GGUF model files');
    } finally {
      await docsHub.stop();
    }
  });
});

test('modelFilesToFetch takes safetensors with their JSON files, else one GGUF (I2_S first)', () => {
  expect(modelFilesToFetch(['README.md', 'config.json', 'model.safetensors', 'tokenizer.json', 'sub/x.json', '.gitattributes']))
    .toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
  expect(modelFilesToFetch(['README.md', 'ggml-model-tq2_0.gguf', 'ggml-model-i2_s.gguf'])).toEqual(['ggml-model-i2_s.gguf']);
  expect(modelFilesToFetch(['README.md'])).toEqual([]);
});

test('the progress bar draws bytes, speed and ETA on a terminal and nothing elsewhere', () => {
  const drawn: string[] = [];
  const tty = Object.assign(new PassThrough(), { isTTY: true });
  tty.on('data', (b: Buffer) => drawn.push(b.toString()));
  const bar = new ProgressBar(tty, 'model.safetensors', 'bytes');
  bar.update(512 * 1024, 2 * 1024 * 1024);
  bar.finish(2 * 1024 * 1024, 2 * 1024 * 1024);
  expect(drawn[0]).toMatch(/^\rmodel\.safetensors \[######\.+\]  25% 512\.0 KiB\/2\.00 MiB [\d.]+ [KMG]?i?B\/s ETA \d\d:\d\d\x1b\[K$/);
  expect(drawn[1]).toMatch(/100% 2\.00 MiB\/2\.00 MiB .*\n$/);
  const pipe = new PassThrough();
  const piped: string[] = [];
  pipe.on('data', (b: Buffer) => piped.push(b.toString()));
  new ProgressBar(pipe, 'x', 'bytes').finish(1, 1);
  expect(piped).toEqual([]);
  expect(formatBytes(1536)).toBe('1.50 KiB');
  expect(terminalSafe('a\x1b[2Jb\tc\r\n\x07')).toBe('a\ufffd[2Jb\tc\ufffd\n\ufffd');
});
