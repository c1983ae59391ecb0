/**
 * Converts an HF model folder or a GGUF file to a bit-plane model file (see docs/model-files.md).
 *
 *   convert-model <input> <output> [--lm-head int8|f16]
 *
 * Shows a progress bar on a terminal; prints the output path, size and f16 range notes.
 */
import { Command, Option } from 'commander';
import { convertModel, LmHeadFormat } from '../src/engine/convert';
import { ProgressBar } from '../src/util/progress';

function main(argv: string[]): void {
  const program = new Command('convert-model')
    .description('convert a BitNet b1.58 model (HF folder or GGUF file) to a bit-plane model file')
    .argument('<input>', 'HF model folder or .gguf file')
    .argument('<output>', 'bit-plane file to write (atomically)')
    .addOption(new Option('--lm-head <format>', 'LM head storage').choices(['int8', 'f16']).default('int8'))
    .parse(argv);
  const [input, output] = program.args;
  const { lmHead } = program.opts<{ lmHead: LmHeadFormat }>();
  const started = Date.now();
  const bar = new ProgressBar('converting');
  const result = convertModel(input, output, { lmHead, onProgress: (p) => bar.update(p.done, p.total, p.tensor) });
  bar.finish();
  console.log(`${result.output}: ${(result.bytes / 2 ** 20).toFixed(1)} MiB in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (result.f16Underflows > 0 || result.f16Subnormals > 0) console.log(`f16: ${result.f16Underflows} non-zero values became 0, ${result.f16Subnormals} stored as subnormals`);
}

main(process.argv);
