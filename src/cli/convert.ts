/** `bitnet-gen convert IN OUT`: an HF folder or GGUF to a bit-plane model file. */
import * as fs from 'fs';
import { Command, Option } from 'commander';
import { convertModel, DEFAULT_LM_HEAD, LM_HEAD_FORMATS } from '../engine/convert';
import type { LmHeadFormat } from '../engine/convert';
import { CliError, write } from './io';
import type { CliIo } from './io';
import { formatBytes, ProgressBar } from './progress';

/** Runs the conversion with a progress bar on a terminal. */
export async function runConvert(input: string, output: string, options: { lmHead: LmHeadFormat }, io: CliIo): Promise<void> {
  if (!fs.existsSync(input)) throw new CliError(`${input}: no such file or folder`);
  const bar = new ProgressBar(io.stderr, 'converting', 'count');
  const result = convertModel(input, output, {
    lmHead: options.lmHead,
    onProgress: (p) => (p.done === p.total ? bar.finish(p.done, p.total) : bar.update(p.done, p.total)),
  });
  const lossy = result.f16Underflows + result.f16Subnormals > 0
    ? ` (f16: ${result.f16Underflows} values underflowed to 0, ${result.f16Subnormals} subnormal)` : '';
  await write(io.stdout, `wrote ${result.output} (${formatBytes(result.bytes)}, LM head ${options.lmHead})${lossy}\n`);
}

/** Adds the `convert` command. */
export function addConvertCommand(program: Command, io: CliIo): void {
  program.command('convert')
    .description('convert a Hugging Face model folder or a .gguf file to a bit-plane model file')
    .argument('<input>', 'Hugging Face model folder (config.json + safetensors) or .gguf file')
    .argument('<output>', 'bit-plane model file to write')
    .addOption(new Option('--lm-head <format>', 'LM head storage: q4 (4-bit, top candidates re-scored with the int8 copy: fewest bytes per token), int8 or f16').choices(LM_HEAD_FORMATS).default(DEFAULT_LM_HEAD))
    .option('-v, --verbose', 'stack traces on errors', false)
    .action((input: string, output: string, options: { lmHead: LmHeadFormat }) => runConvert(input, output, options, io));
}
