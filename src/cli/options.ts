/** Option parsers and the options every model-running command shares. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { BitNetModel } from '../engine/model';
import type { CliIo } from './io';
import { DEFAULT_MODEL, resolveModel } from './model-source';

/** A commander parser for an integer in [min, max]. */
export function integerIn(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer${max === Number.MAX_SAFE_INTEGER ? ` >= ${min}` : ` in [${min}, ${max}]`}.`);
    }
    return n;
  };
}

/** A commander parser for a number in [min, max]. */
export function numberIn(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`expected a number in [${min}, ${max}].`);
    return n;
  };
}

/** A commander parser for a comma-separated list of integers >= min (llama-bench's "-t 1,2,4"). */
export function integerList(min: number): (value: string) => number[] {
  const one = integerIn(min);
  return (value) => value.split(',').map((v) => one(v));
}

/** Appends repeated option values ("--stop a --stop b"). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** --isa, with the instruction sets the kernels are built for. */
export function isaOption(): Option {
  return new Option('--isa <isa>', 'kernel instruction set (auto: BITNET_ISA, else the best this CPU runs)')
    .choices(['auto', 'avx512', 'avx2', 'neon', 'scalar']).default('auto');
}

/** Options shared by commands that load a model. */
export interface ModelOptions {
  model?: string;
  threads?: number;
  ctx?: number;
  isa?: string;
  verify?: boolean;
  /** commander's negation of --no-mmap: true unless the flag is given. */
  mmap?: boolean;
  verbose?: boolean;
}

/** Adds --model, --threads, --ctx, --isa and --verbose to a command. */
export function addModelOptions(command: Command): Command {
  return command
    .option('-m, --model <model>', 'bit-plane model file, Hugging Face model folder, .gguf file, or hub repo id ORG/NAME[@REVISION]', DEFAULT_MODEL)
    .option('-t, --threads <n>', 'worker threads (default: BITNET_THREADS, else the CPUs available)', integerIn(1, 1024))
    .option('-c, --ctx <n>', 'context size in tokens (default: min(4096, the model\'s trained context))', integerIn(1))
    .addOption(isaOption())
    .option('--no-mmap', 'read the weights into memory instead of mapping the file (slower start; the file may then change)')
    .option('--verify', 'check every tensor\'s CRC-32 before running (reads the whole model file once)', false)
    .option('-v, --verbose', 'print timings and details to stderr, and stack traces on errors', false);
}

/** Resolves --model to a bit-plane file and loads it with the runtime options. */
export async function loadModel(options: ModelOptions, io: CliIo): Promise<BitNetModel> {
  const file = await resolveModel(options.model, io);
  return BitNetModel.load(file, { threads: options.threads, isa: options.isa, maxContext: options.ctx, verify: options.verify,
    noMmap: options.mmap === false });
}
