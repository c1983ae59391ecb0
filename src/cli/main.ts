/**
 * The `bitnet-gen` command line. `runCli` parses argv and runs one command against the given
 * streams, returning the exit code, so tests run commands in-process; `main` is the binary.
 */
import { Command, CommanderError } from 'commander';
import type { OutputConfiguration } from 'commander';
import { addBenchCommand } from './bench';
import { addChatCommand } from './chat';
import { addConvertCommand } from './convert';
import { configureGenerate } from './generate';
import { addInfoCommand } from './info';
import { processIo } from './io';
import type { CliIo } from './io';
import { addPerplexityCommand } from './perplexity';
import { addPullCommand } from './pull';

// Read at run time: package.json lies outside the compiled rootDir.
const { version } = require('../../package.json') as { version: string };

/** Help to stdout, errors to stderr as one "bitnet-gen: ..." line. */
function outputTo(io: CliIo): OutputConfiguration {
  return {
    writeOut: (text) => io.stdout.write(text),
    writeErr: (text) => io.stderr.write(text),
    outputError: (text, writeErr) => writeErr(`bitnet-gen: ${text.replace(/^error: /, '')}`),
  };
}

/** The full program: the root command generates; subcommands do the rest. */
export function buildProgram(io: CliIo): Command {
  const program = new Command('bitnet-gen')
    .description('Run BitNet b1.58 ternary LLMs on the CPU. Without a command: answer PROMPT (streamed to stdout).')
    .version(version, '-V, --version')
    .enablePositionalOptions()
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput(outputTo(io))
    .addHelpText('after', [
      '',
      'Examples:',
      '  bitnet-gen "What is a ternary weight?"',
      '  echo "Once upon a time" | bitnet-gen --raw -n 64 --temperature 0',
      '  bitnet-gen chat --system "You are terse."',
      '  bitnet-gen info microsoft/bitnet-b1.58-2B-4T',
      '',
      'Environment: HF_ENDPOINT, HF_TOKEN, HF_HOME, HF_HUB_OFFLINE (hub downloads), BITNET_GEN_CACHE (converted models),',
      '             BITNET_THREADS, BITNET_ISA (runtime).',
    ].join('\n'));
  // Subcommands copy the output and exit settings above when they are created.
  configureGenerate(program, io);
  addChatCommand(program, io);
  addConvertCommand(program, io);
  addInfoCommand(program, io);
  addPullCommand(program, io);
  addBenchCommand(program, io);
  addPerplexityCommand(program, io);
  return program;
}

/**
 * Runs the CLI with `argv` (without the node and script paths) and returns the exit code.
 * User errors print one line on stderr; --verbose adds the stack trace.
 */
export async function runCli(argv: string[], io: CliIo = processIo()): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // commander has already printed its message (or the help / version text).
      return error.exitCode;
    }
    const verbose = argv.includes('--verbose') || argv.includes('-v');
    const message = error instanceof Error ? error.message : String(error);
    io.stderr.write(`bitnet-gen: ${verbose && error instanceof Error && error.stack ? error.stack : message.split('\n')[0]}\n`);
    return (error as { exitCode?: number }).exitCode ?? 1;
  }
}

/** The binary's entry point. */
export function main(): void {
  runCli(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  }, (error: unknown) => {
    process.stderr.write(`bitnet-gen: ${String(error)}\n`);
    process.exitCode = 1;
  });
}

if (require.main === module) main();
