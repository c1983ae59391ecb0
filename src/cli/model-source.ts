/**
 * Turns what the user passed as --model into a bit-plane file: `demo` is the bundled demo model,
 * a bit-plane file is used as is, an HF folder or a .gguf is converted once (ensureConverted
 * caches the result), and a hub repository id (ORG/NAME[@REVISION]) is downloaded into the hub
 * cache first.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ensureConverted } from '../engine/convert';
import { DEMO_MODEL_NAME, demoModelPath } from '../engine/demo-model';
import { HubClient, HubError } from '../hub';
import type { DownloadProgress } from '../hub';
import { CliError } from './io';
import type { CliIo } from './io';
import { ProgressBar } from './progress';

/** The model used when --model is not given. */
export const DEFAULT_MODEL = 'microsoft/bitnet-b1.58-2B-4T';

const REPO_SPEC = /^([\w.-]+\/[\w.-]+)(?:@([\w./-]+))?$/;

/**
 * The files of a hub repository that make a model: config, tokenizer and safetensors files
 * when there are safetensors, else one GGUF (the I2_S one when there are several).
 */
export function modelFilesToFetch(files: string[]): string[] {
  const topLevel = files.filter((f) => !f.includes('/'));
  if (topLevel.some((f) => f.endsWith('.safetensors'))) return topLevel.filter((f) => f.endsWith('.json') || f.endsWith('.safetensors'));
  const ggufs = files.filter((f) => f.toLowerCase().endsWith('.gguf'));
  if (ggufs.length === 0) return [];
  return [ggufs.find((f) => /i2_s/i.test(f)) ?? ggufs[0]];
}

/** Progress bars for a hub client's downloads, one per file. */
export function downloadProgress(io: CliIo): (p: DownloadProgress) => void {
  const bars = new Map<string, ProgressBar>();
  return (p) => {
    let bar = bars.get(p.file);
    if (!bar) {
      bar = new ProgressBar(io.stderr, p.file, 'bytes');
      bar.resumeFrom(p.resumedFrom);
      bars.set(p.file, bar);
    }
    if (p.done) bar.finish(p.received, p.total);
    else bar.update(p.received, p.total);
  };
}

/** A downloaded repository: the model files and where their conversion is cached. */
export interface PulledModel {
  /** The HF snapshot folder, or the .gguf inside it. */
  source: string;
  /** `models--ORG--NAME/bitnet-gen`, beside the repository's snapshots/ in the hub cache. */
  convertedDir: string;
}

/** Downloads a repository's model files. */
export async function pullModel(spec: string, io: CliIo): Promise<PulledModel> {
  const match = REPO_SPEC.exec(spec);
  if (!match) throw new CliError(`'${spec}' is not a hub repository id (ORG/NAME or ORG/NAME@REVISION)`);
  const [, repoId, revision] = match;
  const hub = new HubClient({ onProgress: downloadProgress(io) });
  let snapshot;
  try {
    snapshot = await hub.snapshot(repoId, { revision, select: modelFilesToFetch });
  } catch (error) {
    if (error instanceof HubError) throw new CliError(error.message);
    throw error;
  }
  if (snapshot.files.length === 0) throw new CliError(`${repoId} holds no safetensors or GGUF model files`);
  const source = snapshot.files.length === 1 && snapshot.files[0].toLowerCase().endsWith('.gguf')
    ? path.join(snapshot.dir, snapshot.files[0])
    : snapshot.dir;
  return { source, convertedDir: path.join(path.dirname(path.dirname(snapshot.dir)), 'bitnet-gen') };
}

/**
 * Converts an HF folder or .gguf once (cached in `cacheDir`, default $BITNET_GEN_CACHE), with a
 * progress bar on a terminal.
 */
export function convertOnce(source: string, io: CliIo, cacheDir?: string): string {
  return ensureConverted(source, { cacheDir, onProgress: conversionProgress(source, io) });
}

/** A progress bar for converting `source`, created on the first report. */
function conversionProgress(source: string, io: CliIo): (p: { done: number; total: number }) => void {
  let bar: ProgressBar | undefined;
  return (p) => {
    bar ??= new ProgressBar(io.stderr, `converting ${path.basename(source)}`, 'count');
    if (p.done === p.total) bar.finish(p.done, p.total);
    else bar.update(p.done, p.total);
  };
}

/**
 * The bit-plane file for `spec`: `demo` (the bundled demo model, whatever the current folder
 * holds; write ./demo for a local path of that name), a bit-plane file, an HF folder, a .gguf,
 * or a hub repository id.
 * @throws CliError saying what `spec` was expected to be
 */
export async function resolveModel(spec: string | undefined, io: CliIo): Promise<string> {
  const model = spec ?? DEFAULT_MODEL;
  if (model === DEMO_MODEL_NAME) return demoModelPath({ onProgress: conversionProgress('demo-model', io) });
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(model);
  } catch {
    stat = undefined;
  }
  // Any other file must be a bit-plane file; BitNetModel.load says so when it is not.
  if (stat?.isFile()) return model.toLowerCase().endsWith('.gguf') ? convertOnce(model, io) : model;
  if (stat?.isDirectory()) {
    if (!fs.existsSync(path.join(model, 'config.json'))) throw new CliError(`${model} is a folder without config.json, not a Hugging Face model folder`);
    return convertOnce(model, io);
  }
  if (!REPO_SPEC.test(model) || model.startsWith('.') || model.startsWith('/')) {
    throw new CliError(`model '${model}' not found: no such file or folder, and not a hub repo id (ORG/NAME)`);
  }
  const pulled = await pullModel(model, io);
  return convertOnce(pulled.source, io, pulled.convertedDir);
}
