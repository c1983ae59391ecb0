/** `bitnet-gen pull REPO`: downloads a model from the Hugging Face hub into the hub cache. */
import { Command } from 'commander';
import { write } from './io';
import type { CliIo } from './io';
import { convertOnce, pullModel } from './model-source';

/** Downloads the model files of `repo` and, unless --no-convert, converts them once. */
export async function runPull(repo: string, options: { convert: boolean }, io: CliIo): Promise<void> {
  const { source, convertedDir } = await pullModel(repo, io);
  await write(io.stdout, `${source}\n`);
  if (options.convert) await write(io.stdout, `${convertOnce(source, io, convertedDir)}\n`);
}

/** Adds the `pull` command. */
export function addPullCommand(program: Command, io: CliIo): void {
  program.command('pull')
    .description('download a model from the Hugging Face hub (HF_ENDPOINT, HF_TOKEN, HF_HOME, HF_HUB_OFFLINE apply) and convert it')
    .argument('<repo>', 'hub repository id ORG/NAME[@REVISION]')
    .option('--no-convert', 'only download; do not convert to a bit-plane file')
    .option('-v, --verbose', 'stack traces on errors', false)
    .action((repo: string, options: { convert: boolean }) => runPull(repo, options, io));
}
