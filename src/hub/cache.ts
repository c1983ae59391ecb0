/**
 * The Hugging Face hub cache, laid out exactly as huggingface_hub lays it out, so files that
 * Python tools downloaded are reused here and files downloaded here are usable by them:
 *
 *   <cache>/models--ORG--NAME/blobs/<etag>                  file contents, named by ETag (sha256 for LFS files)
 *   <cache>/models--ORG--NAME/refs/<revision>               the commit a branch or tag pointed to
 *   <cache>/models--ORG--NAME/snapshots/<commit>/<file>     relative symlink to ../../blobs/<etag>
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/**
 * The hub cache folder: HF_HUB_CACHE, else $HF_HOME/hub, else
 * $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub (huggingface_hub's order).
 */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  const home = env.HF_HOME ?? path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'huggingface');
  return path.join(home, 'hub');
}

/** True for a full 40-hex-digit commit id (used as is, no ref lookup). */
export function isCommitHash(revision: string): boolean {
  return /^[0-9a-f]{40}$/.test(revision);
}

/** A repository id as the hub accepts it: NAME or ORG/NAME. */
export function checkRepoId(repoId: string): void {
  if (!/^[\w.-]+(\/[\w.-]+)?$/.test(repoId) || repoId.includes('..') || repoId.includes('--')) {
    throw new RangeError(`'${repoId}' is not a hub repository id (expected ORG/NAME)`);
  }
}

/** One model repository's part of the cache. */
export class RepoCache {
  /** The repository's folder, e.g. <cache>/models--microsoft--bitnet-b1.58-2B-4T. */
  readonly dir: string;

  constructor(cacheDir: string, readonly repoId: string) {
    checkRepoId(repoId);
    this.dir = path.join(cacheDir, `models--${repoId.replace('/', '--')}`);
  }

  blobPath(etag: string): string {
    return path.join(this.dir, 'blobs', etag);
  }

  snapshotDir(commit: string): string {
    return path.join(this.dir, 'snapshots', commit);
  }

  snapshotPath(commit: string, file: string): string {
    return path.join(this.snapshotDir(commit), ...file.split('/'));
  }

  /** The commit `revision` resolves to in the cache, or null when no ref was recorded. */
  commitFor(revision: string): string | null {
    if (isCommitHash(revision)) return revision;
    try {
      const commit = fs.readFileSync(path.join(this.dir, 'refs', ...revision.split('/')), 'utf8').trim();
      return isCommitHash(commit) ? commit : null;
    } catch {
      return null;
    }
  }

  /** Records that `revision` (a branch or tag) points at `commit`. */
  writeRef(revision: string, commit: string): void {
    if (isCommitHash(revision) || this.commitFor(revision) === commit) return;
    const refPath = path.join(this.dir, 'refs', ...revision.split('/'));
    fs.mkdirSync(path.dirname(refPath), { recursive: true });
    fs.writeFileSync(refPath, commit);
  }

  /** The cached copy of `file` at `revision`, or null when it is not in the cache. */
  cachedFile(revision: string, file: string): string | null {
    const commit = this.commitFor(revision);
    if (!commit) return null;
    const target = this.snapshotPath(commit, file);
    return fs.existsSync(target) ? target : null;
  }

  /** Points snapshots/<commit>/<file> at blobs/<etag> (a relative symlink; a copy where links are not allowed). */
  linkSnapshot(commit: string, file: string, etag: string): string {
    const target = this.snapshotPath(commit, file);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.rmSync(target, { force: true });
    const blob = this.blobPath(etag);
    try {
      fs.symlinkSync(path.relative(path.dirname(target), blob), target);
    } catch {
      fs.copyFileSync(blob, target);
    }
    return target;
  }
}
