/** `bitnet-gen info MODEL`: what a model is and how this machine would run it. */
import * as fs from 'fs';
import { Command } from 'commander';
import { formatHugePageShare } from '../bench/measure';
import { LM_HEAD_EXACT_ROWS, LM_HEAD_Q4_ROW_SCALE, LM_HEAD_ROW_SCALE, readBitplaneHeader } from '../formats/bitplane-file';
import type { BitplaneTensorKind } from '../formats/bitplane-file';
import { BitNetModel } from '../engine/model';
import { write } from './io';
import type { CliIo } from './io';
import { integerIn, isaOption } from './options';
import { resolveModel } from './model-source';
import { formatBytes } from './progress';

/** Everything `info` reports, as --json prints it. */
export interface ModelInfo {
  file: string;
  fileBytes: number;
  config: BitNetModel['config'];
  parameters: number;
  tensors: { kind: BitplaneTensorKind; count: number; bytes: number }[];
  lmHead: BitNetModel['lmHead'];
  tokenizer: { vocabSize: number; bos: number; eos: number; eot: number | null; stopTokens: readonly number[] };
  chatTemplate: string | null;
  runtime: { isa: string; threads: number };
  weightBytesPerToken: number;
  /** The share of the streamed weights the OS maps with 2 MB pages (BitNetModel.hugePageShare); null where it cannot tell. */
  hugePages: number | null;
}

/** Collects the report for a loaded model. */
export function modelInfo(model: BitNetModel, fileBytes: number): ModelInfo {
  const header = readBitplaneHeader(model.path);
  const byKind = new Map<BitplaneTensorKind, { count: number; bytes: number }>();
  let parameters = 0;
  for (const t of header.tensors) {
    const entry = byKind.get(t.kind) ?? { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += t.byteLength;
    byKind.set(t.kind, entry);
    // The int8 / 4-bit heads duplicate the embedding (or lm_head.weight); count weights once.
    if (t.kind !== 'blob' && t.kind !== 'i8' && t.kind !== 'q4' && t.name !== LM_HEAD_ROW_SCALE && t.name !== LM_HEAD_Q4_ROW_SCALE) parameters += t.shape.reduce((a, b) => a * b, 1);
  }
  const tok = model.tokenizer;
  return {
    file: model.path,
    fileBytes,
    config: model.config,
    parameters,
    tensors: [...byKind].map(([kind, v]) => ({ kind, ...v })),
    lmHead: model.lmHead,
    tokenizer: { vocabSize: tok.vocabSize, bos: tok.bosId, eos: tok.eosId, eot: tok.eotId ?? null, stopTokens: model.stopTokenIds },
    chatTemplate: header.chatTemplate,
    runtime: { isa: model.runtime.isa, threads: model.runtime.threads },
    weightBytesPerToken: model.weightBytesPerToken,
    hugePages: model.hugePageShare(),
  };
}

/** The report as aligned text lines. */
export function formatInfo(info: ModelInfo): string {
  const c = info.config;
  const rows: [string, string][] = [
    ['file', `${info.file} (${formatBytes(info.fileBytes)})`],
    ['architecture', `BitNet b1.58, ${c.layers} layers, hidden ${c.hidden}, FFN ${c.intermediate} (${c.activation}), ` +
      `${c.heads} heads / ${c.kvHeads} KV heads x ${c.headDim}, sub-norms ${c.subNorms ? 'yes' : 'no'}`],
    ['parameters', `${(info.parameters / 1e9).toFixed(3)} B`],
    ['context', `${c.maxPositions} trained, RoPE theta ${c.ropeTheta} (${c.ropeLayout}), RMSNorm eps ${c.rmsEps}`],
    ['embedding', `${c.vocab} x ${c.hidden} f16, LM head ${info.lmHead === 'q4' ? `q4 (top ${LM_HEAD_EXACT_ROWS} re-scored with int8)` : info.lmHead}${c.tiedEmbeddings ? ' (tied to the embedding)' : ''}`],
    ...info.tensors.map((t): [string, string] => [`tensors ${t.kind}`, `${t.count} (${formatBytes(t.bytes)})`]),
    ['tokenizer', `${info.tokenizer.vocabSize} tokens, BOS ${info.tokenizer.bos}, EOS ${info.tokenizer.eos}` +
      `${info.tokenizer.eot === null ? '' : `, EOT ${info.tokenizer.eot}`}, stops at [${info.tokenizer.stopTokens.join(', ')}]`],
    ['chat template', info.chatTemplate === null ? 'none (the 2B4T chat format is used)' : `${info.chatTemplate.length} characters of Jinja`],
    ['runtime', `${info.runtime.isa} kernels, ${info.runtime.threads} threads`],
    ['read per token', `${formatBytes(info.weightBytesPerToken)} of weights (ternary planes + LM head)`],
    ['memory', info.hugePages === null ? 'the OS cannot tell the page size of the mapped weights' : formatHugePageShare(info.hugePages)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

interface InfoCliOptions {
  threads?: number;
  isa: string;
  json: boolean;
  verify: boolean;
}

/** Runs `info`. */
export async function runInfo(spec: string, options: InfoCliOptions, io: CliIo): Promise<void> {
  const file = await resolveModel(spec, io);
  const model = await BitNetModel.load(file, { threads: options.threads, isa: options.isa, maxContext: 1, verify: options.verify });
  const info = modelInfo(model, fs.statSync(file).size);
  await write(io.stdout, options.json ? `${JSON.stringify(info)}\n` : `${formatInfo(info)}\n`);
}

/** Adds the `info` command. */
export function addInfoCommand(program: Command, io: CliIo): void {
  program.command('info')
    .description('show a model\'s architecture, tensors, tokenizer, chat template, and how this machine would run it')
    .argument('<model>', 'bit-plane model file, Hugging Face model folder, .gguf file, or hub repo id')
    .option('-t, --threads <n>', 'threads to report for (default: BITNET_THREADS, else the CPUs available)', integerIn(1, 1024))
    .addOption(isaOption())
    .option('--json', 'print one JSON object', false)
    .option('--verify', 'check every tensor\'s CRC-32 (reads the whole model file once)', false)
    .option('-v, --verbose', 'stack traces on errors', false)
    .action((spec: string, options: InfoCliOptions) => runInfo(spec, options, io));
}
