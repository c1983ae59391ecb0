/**
 * A small Hugging Face hub client: file metadata (HEAD on /resolve/), file lists (the model
 * API), and downloads into the huggingface_hub cache layout with HTTP Range resume,
 * sha256 verification of LFS files and an atomic rename into place.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { hubCacheDir, RepoCache } from './cache';

/** Default hub address; HF_ENDPOINT overrides it. */
export const DEFAULT_ENDPOINT = 'https://huggingface.co';

/** What went wrong, for callers that react differently (e.g. fall back to the cache). */
export type HubErrorKind = 'offline' | 'unreachable' | 'auth' | 'not-found' | 'integrity' | 'http';

/** A hub failure with a message that says what to do about it. */
export class HubError extends Error {
  constructor(readonly kind: HubErrorKind, message: string) {
    super(message);
    this.name = 'HubError';
  }
}

/** Progress of one file's download. */
export interface DownloadProgress {
  file: string;
  /** Bytes on disk so far, including bytes kept from an earlier interrupted run. */
  received: number;
  /** Size of the file in bytes (0 when the server did not say). */
  total: number;
  /** Bytes kept from an earlier run when this one started (for speed estimates). */
  resumedFrom: number;
  done: boolean;
}

/** Options of a {@link HubClient}. */
export interface HubClientOptions {
  /** Hub address. Default: HF_ENDPOINT, else https://huggingface.co. */
  endpoint?: string;
  /** Access token for private or gated repositories. Default: HF_TOKEN. */
  token?: string;
  /** Use only the cache, never the network. Default: HF_HUB_OFFLINE is 1/true/yes/on. */
  offline?: boolean;
  /** Cache folder. Default: {@link hubCacheDir}(). */
  cacheDir?: string;
  /** Called as bytes arrive. Default: none. */
  onProgress?: (progress: DownloadProgress) => void;
  /** Attempts per file when the connection drops mid-transfer (each resumes). Default 3. */
  attempts?: number;
}

/** What a HEAD on a file's resolve URL tells. */
export interface FileMetadata {
  commit: string;
  /** X-Linked-Etag (the sha256 of an LFS file) or ETag, without quotes. */
  etag: string;
  size: number;
  /** Where the bytes are (the CDN address for LFS files). */
  downloadUrl: string;
}

/** A repository's files at one commit. */
export interface RepoFiles {
  commit: string;
  files: string[];
}

/** A downloaded (or cached) snapshot of a repository. */
export interface Snapshot {
  commit: string;
  /** snapshots/<commit> inside the cache. */
  dir: string;
  files: string[];
}

const TRUE_VALUES = new Set(['1', 'true', 'yes', 'on']);

function envFlag(value: string | undefined): boolean {
  return value !== undefined && TRUE_VALUES.has(value.trim().toLowerCase());
}

function normalizeEtag(etag: string | null): string | null {
  return etag ? etag.replace(/^W\//, '').replace(/"/g, '') : null;
}

function errorCause(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
  return cause?.code ?? cause?.message ?? (error as Error)?.message ?? String(error);
}

const NO_NETWORK_HINT = 'pass a local model with --model PATH (a bit-plane file, an HF folder or a .gguf), or set HF_ENDPOINT to a reachable hub mirror';

/** Hub client bound to one endpoint, token and cache. */
export class HubClient {
  readonly endpoint: string;
  readonly cacheDir: string;
  readonly offline: boolean;
  private readonly token: string | undefined;
  private readonly onProgress: ((progress: DownloadProgress) => void) | undefined;
  private readonly attempts: number;

  constructor(options: HubClientOptions = {}) {
    this.endpoint = (options.endpoint ?? process.env.HF_ENDPOINT ?? DEFAULT_ENDPOINT).replace(/\/+$/, '');
    this.token = options.token ?? (process.env.HF_TOKEN || undefined);
    this.offline = options.offline ?? envFlag(process.env.HF_HUB_OFFLINE);
    this.cacheDir = options.cacheDir ?? hubCacheDir();
    this.onProgress = options.onProgress;
    this.attempts = options.attempts ?? 3;
  }

  /** The resolve URL of a file: {endpoint}/{repo}/resolve/{revision}/{file}. */
  resolveUrl(repoId: string, file: string, revision: string): string {
    const encodedFile = file.split('/').map(encodeURIComponent).join('/');
    return `${this.endpoint}/${repoId}/resolve/${encodeURIComponent(revision)}/${encodedFile}`;
  }

  /**
   * HEAD on the resolve URL. Same-host redirects (renamed repos, resolve caches) are
   * followed; a redirect to another host (the LFS CDN) is where the bytes are.
   */
  async fileMetadata(repoId: string, file: string, revision = 'main'): Promise<FileMetadata> {
    let url = this.resolveUrl(repoId, file, revision);
    const what = `${repoId}/${file} (revision ${revision})`;
    for (let hop = 0; hop < 10; hop++) {
      const response = await this.request(url, { method: 'HEAD', redirect: 'manual', headers: { 'Accept-Encoding': 'identity' } }, what);
      const location = response.headers.get('location');
      const redirected = response.status >= 300 && response.status < 400 && location;
      const next = redirected ? new URL(location, url) : null;
      if (next && next.origin === new URL(this.endpoint).origin && !response.headers.get('x-linked-etag')) {
        url = next.toString();
        continue;
      }
      if (!redirected && !response.ok) throw this.httpError(response, what);
      const commit = response.headers.get('x-repo-commit');
      const etag = normalizeEtag(response.headers.get('x-linked-etag') ?? response.headers.get('etag'));
      const size = Number(response.headers.get('x-linked-size') ?? response.headers.get('content-length') ?? 0);
      if (!commit || !etag) {
        throw new HubError('http', `${url} answered without X-Repo-Commit or ETag headers; is HF_ENDPOINT (${this.endpoint}) a Hugging Face hub?`);
      }
      return { commit, etag, size, downloadUrl: next ? next.toString() : url };
    }
    throw new HubError('http', `too many redirects resolving ${what}`);
  }

  /** The files of a repository at a revision, from GET /api/models/{repo}/revision/{revision}. */
  async listFiles(repoId: string, revision = 'main'): Promise<RepoFiles> {
    const url = `${this.endpoint}/api/models/${repoId}/revision/${encodeURIComponent(revision)}`;
    const what = `${repoId} (revision ${revision})`;
    const response = await this.request(url, { headers: { Accept: 'application/json' } }, what);
    if (!response.ok) throw this.httpError(response, what);
    const info = (await response.json()) as { sha?: unknown; siblings?: { rfilename?: unknown }[] };
    if (typeof info.sha !== 'string' || !Array.isArray(info.siblings)) {
      throw new HubError('http', `${url} did not return a model description (sha, siblings)`);
    }
    return { commit: info.sha, files: info.siblings.map((s) => s.rfilename).filter((f): f is string => typeof f === 'string') };
  }

  /**
   * Downloads one file into the cache (or finds it there) and returns its snapshot path.
   * Without network the cached copy is used when there is one.
   */
  async download(repoId: string, file: string, revision = 'main'): Promise<string> {
    const repo = new RepoCache(this.cacheDir, repoId);
    if (this.offline) return this.offlineFile(repo, file, revision);
    let meta: FileMetadata;
    try {
      meta = await this.fileMetadata(repoId, file, revision);
    } catch (error) {
      const cached = error instanceof HubError && error.kind === 'unreachable' ? repo.cachedFile(revision, file) : null;
      if (cached) return cached;
      throw error;
    }
    repo.writeRef(revision, meta.commit);
    const snapshotFile = repo.snapshotPath(meta.commit, file);
    if (fs.existsSync(snapshotFile)) return snapshotFile;
    if (!fs.existsSync(repo.blobPath(meta.etag))) await withBlobLock(repo.blobPath(meta.etag), () => this.fetchBlob(repo, file, meta));
    return repo.linkSnapshot(meta.commit, file, meta.etag);
  }

  /**
   * Downloads the files of a repository that `select` picks from its file list (default all)
   * and returns the snapshot folder and those files (none when `select` picks none). Offline,
   * `select` picks from the files of the cached snapshot of the revision.
   */
  async snapshot(repoId: string, options: { revision?: string; select?: (files: string[]) => string[] } = {}): Promise<Snapshot> {
    const revision = options.revision ?? 'main';
    const select = options.select ?? ((files: string[]) => files);
    const repo = new RepoCache(this.cacheDir, repoId);
    if (this.offline) return this.offlineSnapshot(repo, revision, select);
    let listing: RepoFiles;
    try {
      listing = await this.listFiles(repoId, revision);
    } catch (error) {
      if (error instanceof HubError && error.kind === 'unreachable' && repo.commitFor(revision)) return this.offlineSnapshot(repo, revision, select);
      throw error;
    }
    const files = select(listing.files);
    // Resolve by commit so that every file comes from the same snapshot even if the branch moves.
    for (const file of files) await this.download(repoId, file, listing.commit);
    repo.writeRef(revision, listing.commit);
    return { commit: listing.commit, dir: repo.snapshotDir(listing.commit), files };
  }

  private offlineFile(repo: RepoCache, file: string, revision: string): string {
    const cached = repo.cachedFile(revision, file);
    if (cached) return cached;
    throw new HubError('offline', `HF_HUB_OFFLINE is set and ${repo.repoId}/${file} (revision ${revision}) is not in the cache ${this.cacheDir}; ` +
      `unset HF_HUB_OFFLINE to download it, or ${NO_NETWORK_HINT}`);
  }

  private offlineSnapshot(repo: RepoCache, revision: string, select: (files: string[]) => string[]): Snapshot {
    const commit = repo.commitFor(revision);
    const dir = commit ? repo.snapshotDir(commit) : null;
    if (!commit || !dir || !fs.existsSync(dir)) {
      const reason = this.offline ? 'HF_HUB_OFFLINE is set and' : `${this.endpoint} cannot be reached and`;
      throw new HubError(this.offline ? 'offline' : 'unreachable',
        `${reason} ${repo.repoId} (revision ${revision}) is not in the cache ${this.cacheDir}; ${NO_NETWORK_HINT}`);
    }
    return { commit, dir, files: select(listTree(dir)) };
  }

  /** Streams the file into blobs/<etag>.incomplete, resuming, then verifies and renames it. */
  private async fetchBlob(repo: RepoCache, file: string, meta: FileMetadata): Promise<void> {
    const blob = repo.blobPath(meta.etag);
    const incomplete = `${blob}.incomplete`;
    fs.mkdirSync(path.dirname(blob), { recursive: true });
    for (let attempt = 1; ; attempt++) {
      try {
        await this.transfer(file, meta, incomplete);
        break;
      } catch (error) {
        const retry = error instanceof HubError && error.kind === 'unreachable' && attempt < this.attempts;
        if (!retry) throw error;
      }
    }
    // An LFS file's ETag is its sha256; git blobs are named by their sha1 and come from the hub itself.
    if (/^[0-9a-f]{64}$/.test(meta.etag)) {
      const actual = await sha256File(incomplete);
      if (actual !== meta.etag) {
        fs.rmSync(incomplete, { force: true });
        throw new HubError('integrity', `${repo.repoId}/${file}: downloaded bytes have sha256 ${actual}, expected ${meta.etag}; ` +
          'the partial file was deleted, run the command again to download it anew');
      }
    }
    fs.renameSync(incomplete, blob);
  }

  private async transfer(file: string, meta: FileMetadata, incomplete: string): Promise<void> {
    let offset = fs.existsSync(incomplete) ? fs.statSync(incomplete).size : 0;
    if (meta.size > 0 && offset > meta.size) {
      fs.rmSync(incomplete);
      offset = 0;
    }
    const headers: Record<string, string> = { 'Accept-Encoding': 'identity' };
    if (offset > 0) headers.Range = `bytes=${offset}-`;
    const what = `${file} from ${new URL(meta.downloadUrl).host}`;
    const response = await this.request(meta.downloadUrl, { headers }, what, new URL(meta.downloadUrl).origin === new URL(this.endpoint).origin);
    if (response.status === 416 && offset === meta.size) return;
    if (!response.ok) throw this.httpError(response, what);
    // A server that ignores Range sends the whole file again (200): start over.
    if (response.status !== 206) offset = 0;
    const handle = await fs.promises.open(incomplete, offset > 0 ? 'a' : 'w');
    const progress: DownloadProgress = { file, received: offset, total: meta.size, resumedFrom: offset, done: false };
    this.onProgress?.(progress);
    try {
      const body = (response.body as unknown as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
      for (;;) {
        let step: IteratorResult<Uint8Array>;
        try {
          step = await body.next();
        } catch (error) {
          // Only the network side is worth a retry; a failing disk write below is thrown as is.
          throw new HubError('unreachable', `the download of ${what} was interrupted (${errorCause(error)}); run the command again to resume it`);
        }
        if (step.done) break;
        await handle.write(step.value);
        progress.received += step.value.length;
        this.onProgress?.(progress);
      }
    } finally {
      await handle.close();
    }
    if (meta.size > 0 && progress.received !== meta.size) {
      throw new HubError('unreachable', `the download of ${what} ended after ${progress.received} of ${meta.size} bytes; run the command again to resume it`);
    }
    progress.done = true;
    this.onProgress?.(progress);
  }

  private async request(url: string, init: RequestInit, what: string, withToken = true): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('User-Agent', `bitnet-gen; node/${process.versions.node}`);
    if (this.token && withToken) headers.set('Authorization', `Bearer ${this.token}`);
    try {
      return await fetch(url, { ...init, headers });
    } catch (error) {
      throw new HubError('unreachable', `cannot reach ${new URL(url).origin} for ${what} (${errorCause(error)}); ${NO_NETWORK_HINT}`);
    }
  }

  private httpError(response: Response, what: string): HubError {
    const code = response.headers.get('x-error-code');
    const serverMessage = response.headers.get('x-error-message');
    const detail = serverMessage ? `: ${serverMessage}` : '';
    if (response.status === 401 || response.status === 403) {
      const tokenHint = this.token ? 'check that HF_TOKEN has access to it' : 'set HF_TOKEN to an access token (https://huggingface.co/settings/tokens)';
      const gated = code === 'GatedRepo' ? ' it is gated: accept its terms on its hub page, then' : '';
      return new HubError('auth', `HTTP ${response.status} for ${what}${detail}: the repository is private, gated or does not exist;${gated} ${tokenHint}`);
    }
    if (response.status === 404) {
      const meaning = code === 'EntryNotFound' ? 'no such file in the repository'
        : code === 'RevisionNotFound' ? 'no such revision'
        : code === 'RepoNotFound' ? 'no such repository' : 'not found';
      return new HubError('not-found', `HTTP 404 for ${what}${detail}: ${meaning}`);
    }
    return new HubError('http', `HTTP ${response.status} ${response.statusText} for ${what}${detail}`);
  }
}

/**
 * Runs `fetch` while holding `<blob>.lock` (created exclusively, holding our pid), so that two
 * processes never append to one .incomplete file. A waiter returns as soon as the blob exists;
 * a lock whose process is gone is taken over.
 */
async function withBlobLock(blob: string, fetch: () => Promise<void>): Promise<void> {
  const lock = `${blob}.lock`;
  fs.mkdirSync(path.dirname(blob), { recursive: true });
  for (;;) {
    if (fs.existsSync(blob)) return;
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (!processAlive(Number(fs.readFileSync(lock, 'utf8')))) fs.rmSync(lock, { force: true });
    else await new Promise((resolve) => setTimeout(resolve, 200));
  }
  try {
    if (!fs.existsSync(blob)) await fetch();
  } finally {
    fs.rmSync(lock, { force: true });
  }
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Paths of the files under `dir`, relative and '/'-separated (symlinks count as files). */
function listTree(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...listTree(path.join(dir, entry.name), rel));
    else out.push(rel);
  }
  return out.sort();
}

/** The sha256 of a file, hex. */
export async function sha256File(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

