/**
 * A local imitation of the Hugging Face hub's download endpoints, serving the files of a folder
 * as one repository: GET /api/models/{repo}/revision/{rev}, HEAD/GET /{repo}/resolve/{rev}/{file}
 * (LFS files answer 302 to /lfs/{sha256} with X-Linked-Etag/X-Linked-Size), Range requests,
 * and switches to fail like the real thing (token required, dropped connections, corrupt bytes).
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as path from 'path';

interface ServedFile {
  name: string;
  bytes: Buffer;
  etag: string;
  lfs: boolean;
}

/** A logged request. */
export interface LoggedRequest {
  method: string;
  url: string;
  range?: string;
  authorization?: string;
}

export class FakeHub {
  readonly commit = crypto.createHash('sha1').update('fake-commit').digest('hex');
  readonly log: LoggedRequest[] = [];
  /** Token every request must carry (401 otherwise). */
  requiredToken: string | null = null;
  /** Close the connection after this many body bytes of the next LFS GET. */
  dropNextLfsAfter: number | null = null;
  /** Serve LFS bytes with one byte flipped. */
  corruptLfs = false;
  private readonly files = new Map<string, ServedFile>();
  private server!: http.Server;

  constructor(readonly repoId: string, folder: string) {
    for (const name of fs.readdirSync(folder).sort()) {
      const bytes = fs.readFileSync(path.join(folder, name));
      const lfs = name.endsWith('.safetensors') || name.endsWith('.gguf');
      const etag = lfs
        ? crypto.createHash('sha256').update(bytes).digest('hex')
        : crypto.createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
      this.files.set(name, { name, bytes, etag, lfs });
    }
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  file(name: string): ServedFile {
    return this.files.get(name)!;
  }

  get fileNames(): string[] {
    return [...this.files.keys()];
  }

  gets(): LoggedRequest[] {
    return this.log.filter((r) => r.method === 'GET' && !r.url.startsWith('/api/'));
  }

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url!, 'http://x');
    this.log.push({ method: req.method!, url: url.pathname, range: req.headers.range, authorization: req.headers.authorization });
    if (this.requiredToken && req.headers.authorization !== `Bearer ${this.requiredToken}`) {
      res.writeHead(401, { 'X-Error-Code': 'RepoNotFound', 'X-Error-Message': 'Invalid credentials in Authorization header' }).end();
      return;
    }
    const prefix = `/${this.repoId}/resolve/`;
    if (url.pathname === `/api/models/${this.repoId}/revision/main` || url.pathname === `/api/models/${this.repoId}/revision/${this.commit}`) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ id: this.repoId, sha: this.commit, siblings: this.fileNames.map((rfilename) => ({ rfilename })) }));
      return;
    }
    if (url.pathname.startsWith('/api/models/')) {
      res.writeHead(404, { 'X-Error-Code': 'RepoNotFound' }).end();
      return;
    }
    if (url.pathname.startsWith('/lfs/')) {
      const file = [...this.files.values()].find((f) => f.etag === url.pathname.slice(5));
      if (!file) res.writeHead(404).end();
      else this.sendBytes(req, res, file);
      return;
    }
    if (!url.pathname.startsWith(prefix)) {
      res.writeHead(404, { 'X-Error-Code': 'RepoNotFound', 'X-Error-Message': 'Repository not found' }).end();
      return;
    }
    const [revision, ...rest] = url.pathname.slice(prefix.length).split('/');
    const file = this.files.get(decodeURIComponent(rest.join('/')));
    if (revision !== 'main' && revision !== this.commit) {
      res.writeHead(404, { 'X-Error-Code': 'RevisionNotFound', 'X-Error-Message': `Invalid rev id: ${revision}` }).end();
      return;
    }
    if (!file) {
      res.writeHead(404, { 'X-Error-Code': 'EntryNotFound', 'X-Error-Message': 'Entry not found', 'X-Repo-Commit': this.commit }).end();
      return;
    }
    if (file.lfs) {
      res.writeHead(302, {
        Location: `/lfs/${file.etag}`,
        'X-Repo-Commit': this.commit,
        'X-Linked-Etag': `"${file.etag}"`,
        'X-Linked-Size': String(file.bytes.length),
        ETag: '"not-the-content-hash"',
      }).end();
      return;
    }
    res.setHeader('X-Repo-Commit', this.commit);
    res.setHeader('ETag', `"${file.etag}"`);
    this.sendBytes(req, res, file);
  }

  private sendBytes(req: http.IncomingMessage, res: http.ServerResponse, file: ServedFile): void {
    let bytes = file.bytes;
    if (file.lfs && this.corruptLfs) {
      bytes = Buffer.from(bytes);
      bytes[bytes.length >> 1] ^= 0xff;
    }
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    const body = bytes.subarray(start);
    res.writeHead(range ? 206 : 200, {
      'Content-Length': String(body.length),
      ...(range ? { 'Content-Range': `bytes ${start}-${bytes.length - 1}/${bytes.length}` } : {}),
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const drop = file.lfs ? this.dropNextLfsAfter : null;
    if (drop !== null) {
      this.dropNextLfsAfter = null;
      res.write(body.subarray(0, drop), () => res.destroy());
      return;
    }
    res.end(body);
  }
}
