/**
 * Generates a seeded synthetic BitNet model in every supported source format.
 *
 *   make-model --preset tiny --seed 1 [--format hf --format gguf-i2_s] [--cache DIR]
 *
 * Prints the path of each format. Outputs are cached (see ensureSyntheticModel), so running it
 * twice is instant; the '2b4t' preset streams ~1.2 GB per format with bounded memory.
 */
import { Command, Option } from 'commander';
import { PresetName } from '../src/model/architecture';
import { ensureSyntheticModel, SYNTH_FORMATS, SynthFormat } from '../src/synth/generate';

function main(argv: string[]): void {
  const program = new Command('make-model')
    .description('generate a seeded synthetic BitNet b1.58 model (HF packed/sharded/bf16, GGUF I2_S/TQ2_0/TQ1_0)')
    .addOption(new Option('--preset <name>', 'model shape').choices(['tiny', 'small', '2b4t']).default('tiny'))
    .addOption(new Option('--seed <n>', 'PRNG seed').default('1').argParser((v) => {
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--seed must be a non-negative integer, got '${v}'`);
      return String(n);
    }))
    .addOption(new Option('--format <format...>', 'formats to write (default: all)').choices([...SYNTH_FORMATS]))
    .option('--cache <dir>', 'cache root (default: <repo>/.cache/models)')
    .parse(argv);
  const options = program.opts<{ preset: PresetName; seed: string; format?: SynthFormat[]; cache?: string }>();
  const started = Date.now();
  const model = ensureSyntheticModel({ preset: options.preset, seed: Number(options.seed), formats: options.format, cacheRoot: options.cache });
  for (const [format, target] of Object.entries(model.paths)) console.log(`${format.padEnd(11)} ${target}`);
  console.error(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

main(process.argv);
