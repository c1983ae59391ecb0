// The llama.cpp side of bench/model-bench.ts: node-llama-cpp (prebuilt CPU binary) serving one
// GGUF at one thread count over stdin/stdout, one JSON object per line, the protocol of
// src/bench/workers.ts. A plain ESM file because node-llama-cpp is ESM with top-level
// await, which the CommonJS build cannot load; a file, not `node -e`, because node-llama-cpp tests
// its binary in a fork() that inherits execArgv.
//
//   node llama-cpp-worker.mjs <node-llama-cpp entry URL> '{"model": FILE, "threads": T, "contextSize": C, "batchSize": B}'
import { readFileSync } from 'fs';
import { createInterface } from 'readline';

const options = JSON.parse(process.argv[3]);
const reply = (value) => process.stdout.write(JSON.stringify(value) + '\n');

const { getLlama } = await import(process.argv[2]);
// build: 'never' = prebuilt binaries only, never a compile from source.
const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error', maxThreads: options.threads });
// Load time counts the model and its context, not loading the llama.cpp library itself.
const started = performance.now();
const model = await llama.loadModel({ modelPath: options.model, gpuLayers: 0 });
const context = await model.createContext({
  contextSize: options.contextSize,
  batchSize: options.batchSize,
  threads: options.threads,
  sequences: 1,
});
const sequence = context.getSequence();
reply({
  ready: true,
  loadMs: performance.now() - started,
  backend: `node-llama-cpp ${JSON.parse(readFileSync(new URL('../package.json', process.argv[2]), 'utf8')).version} cpu`,
  threads: context.currentThreads,
});

// Only the last token of an evaluation asks for a next token, so llama.cpp computes that token's
// logits (and the LM head) exactly once per evaluation, as our Session.evaluate does.
const evaluate = (tokens) =>
  sequence.controlledEvaluate(tokens.map((token, i) => (i === tokens.length - 1 ? [token, { generateNext: { token: true } }] : token)));

for await (const line of createInterface({ input: process.stdin })) {
  const request = JSON.parse(line);
  if (request.kind === undefined) break;
  await sequence.clearHistory();
  const t0 = performance.now();
  if (request.kind === 'pp') await evaluate(request.tokens);
  else for (const token of request.tokens) await evaluate([token]);
  reply({ tokensPerSecond: request.tokens.length / ((performance.now() - t0) / 1000) });
}
reply({ maxRssBytes: process.resourceUsage().maxRSS * 1024 });
await llama.dispose();
