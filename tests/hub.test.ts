import * as fs from 'fs';
import * as path from 'path';
import { HubClient, HubError } from '../src/hub';
import type { DownloadProgress } from '../src/hub';
import { FakeHub } from './hub-fake-server';
import { scratchDir, tinyModel } from './helpers/model-files';

const REPO = 'test-org/tiny-bitnet';
const WEIGHTS = 'model.safetensors';

let hub: FakeHub;
let cacheDir: string;

function client(options: ConstructorParameters<typeof HubClient>[0] = {}): HubClient {
  return new HubClient({ endpoint: hub.endpoint, cacheDir, token: '', offline: false, ...options });
}

async function hubError(action: Promise<unknown>): Promise<HubError> {
  try {
    await action;
  } catch (error) {
    if (error instanceof HubError) return error;
    throw error;
  }
  throw new Error('expected a HubError, but the call succeeded');
}

const repoDir = () => path.join(cacheDir, 'models--test-org--tiny-bitnet');

beforeAll(async () => {
  hub = await new FakeHub(REPO, tinyModel().paths.hf!).start();
});

afterAll(async () => {
  await hub.stop();
});

afterEach(() => {
  fs.rmSync(cacheDir, { recursive: true, force: true });
});

beforeEach(() => {
  cacheDir = scratchDir('hub');
  hub.log.length = 0;
  hub.requiredToken = null;
  hub.corruptLfs = false;
  hub.dropNextLfsAfter = null;
});

describe('hub download', () => {
  test('first download fills the cache in the huggingface_hub layout', async () => {
    const progress: DownloadProgress[] = [];
    const snapshot = await client({ onProgress: (p) => progress.push({ ...p }) }).snapshot(REPO);
    expect(snapshot.commit).toBe(hub.commit);
    expect(snapshot.files).toEqual(hub.fileNames);
    expect(snapshot.dir).toBe(path.join(repoDir(), 'snapshots', hub.commit));
    expect(fs.readFileSync(path.join(repoDir(), 'refs', 'main'), 'utf8')).toBe(hub.commit);
    const weights = path.join(snapshot.dir, WEIGHTS);
    expect(fs.readlinkSync(weights)).toBe(path.join('..', '..', 'blobs', hub.file(WEIGHTS).etag));
    expect(fs.readFileSync(weights).equals(hub.file(WEIGHTS).bytes)).toBe(true);
    expect(fs.readlinkSync(path.join(snapshot.dir, 'config.json'))).toBe(path.join('..', '..', 'blobs', hub.file('config.json').etag));
    expect(fs.readdirSync(path.join(repoDir(), 'blobs')).filter((f) => f.endsWith('.incomplete'))).toEqual([]);
    const last = progress.filter((p) => p.file === WEIGHTS).pop()!;
    expect(last).toMatchObject({ done: true, received: hub.file(WEIGHTS).bytes.length, total: hub.file(WEIGHTS).bytes.length });
    // LFS bytes come from the redirect target, as from the hub's CDN.
    expect(hub.gets().map((r) => r.url)).toContain(`/lfs/${hub.file(WEIGHTS).etag}`);
  });

  test('a second download is a cache hit: metadata only, no bytes', async () => {
    await client().snapshot(REPO);
    hub.log.length = 0;
    const again = await client().download(REPO, WEIGHTS);
    expect(fs.readFileSync(again).equals(hub.file(WEIGHTS).bytes)).toBe(true);
    expect(hub.gets()).toEqual([]);
    expect(hub.log.map((r) => r.method)).toEqual(['HEAD']);
  });

  test('offline (HF_HUB_OFFLINE) uses the cache and never the network', async () => {
    await client().snapshot(REPO);
    hub.log.length = 0;
    const previous = process.env.HF_HUB_OFFLINE;
    process.env.HF_HUB_OFFLINE = '1';
    try {
      const offline = new HubClient({ endpoint: hub.endpoint, cacheDir });
      expect(offline.offline).toBe(true);
      const snapshot = await offline.snapshot(REPO);
      expect(snapshot.files).toEqual(hub.fileNames);
      expect(fs.readFileSync(await offline.download(REPO, 'config.json')).equals(hub.file('config.json').bytes)).toBe(true);
      const missing = await hubError(offline.download(REPO, 'absent.json'));
      expect(missing.kind).toBe('offline');
      expect(missing.message).toMatch(/HF_HUB_OFFLINE is set and test-org\/tiny-bitnet\/absent\.json .* not in the cache/);
      expect(missing.message).toMatch(/--model PATH/);
    } finally {
      if (previous === undefined) delete process.env.HF_HUB_OFFLINE;
      else process.env.HF_HUB_OFFLINE = previous;
    }
    expect(hub.log).toEqual([]);
  });

  test('an interrupted transfer resumes with a Range request', async () => {
    const size = hub.file(WEIGHTS).bytes.length;
    hub.dropNextLfsAfter = Math.floor(size / 3);
    const file = await client().download(REPO, WEIGHTS);
    expect(fs.readFileSync(file).equals(hub.file(WEIGHTS).bytes)).toBe(true);
    const ranges = hub.gets().map((r) => r.range);
    expect(ranges[0]).toBeUndefined();
    expect(ranges[1]).toMatch(/^bytes=\d+-$/);
    expect(Number(/\d+/.exec(ranges[1]!)![0])).toBeGreaterThan(0);
  });

  test('a partial file left by an earlier run is resumed, not downloaded again', async () => {
    const { bytes, etag } = hub.file(WEIGHTS);
    fs.mkdirSync(path.join(repoDir(), 'blobs'), { recursive: true });
    fs.writeFileSync(path.join(repoDir(), 'blobs', `${etag}.incomplete`), bytes.subarray(0, 1000));
    const file = await client().download(REPO, WEIGHTS);
    expect(fs.readFileSync(file).equals(bytes)).toBe(true);
    expect(hub.gets().map((r) => r.range)).toEqual(['bytes=1000-']);
  });

  test('corrupted bytes are detected by sha256 and nothing is kept', async () => {
    hub.corruptLfs = true;
    const error = await hubError(client().download(REPO, WEIGHTS));
    expect(error.kind).toBe('integrity');
    expect(error.message).toContain(`expected ${hub.file(WEIGHTS).etag}`);
    expect(fs.readdirSync(path.join(repoDir(), 'blobs'))).toEqual([]);
    expect(fs.existsSync(path.join(repoDir(), 'snapshots', hub.commit, WEIGHTS))).toBe(false);
  });

  test('401 says to set HF_TOKEN; the token is sent as a bearer token', async () => {
    hub.requiredToken = 'secret-token';
    const error = await hubError(client().snapshot(REPO));
    expect(error.kind).toBe('auth');
    expect(error.message).toMatch(/HTTP 401 .*test-org\/tiny-bitnet.*set HF_TOKEN/);
    const snapshot = await client({ token: 'secret-token' }).snapshot(REPO);
    expect(snapshot.files).toEqual(hub.fileNames);
  });

  test('404 names the missing file, revision or repository', async () => {
    expect((await hubError(client().download(REPO, 'nope.bin'))).message).toMatch(/HTTP 404 for test-org\/tiny-bitnet\/nope\.bin .*no such file/);
    expect((await hubError(client().download(REPO, WEIGHTS, 'v9'))).message).toMatch(/revision v9.*no such revision/);
    const repo = await hubError(client().snapshot('test-org/other'));
    expect(repo.kind).toBe('not-found');
    expect(repo.message).toMatch(/test-org\/other.*no such repository/);
  });

  test('no network: the error says to pass --model PATH or set HF_ENDPOINT', async () => {
    const error = await hubError(new HubClient({ endpoint: 'http://127.0.0.1:1', cacheDir, offline: false }).snapshot(REPO));
    expect(error.kind).toBe('unreachable');
    expect(error.message).toMatch(/cannot reach http:\/\/127\.0\.0\.1:1 .*--model PATH.*HF_ENDPOINT/);
  });

  test('no network but cached: the cached snapshot is used', async () => {
    await client().snapshot(REPO);
    const unreachable = new HubClient({ endpoint: 'http://127.0.0.1:1', cacheDir, offline: false });
    expect((await unreachable.snapshot(REPO)).files).toEqual(hub.fileNames);
    expect(fs.readFileSync(await unreachable.download(REPO, WEIGHTS)).equals(hub.file(WEIGHTS).bytes)).toBe(true);
  });

  test('HF_ENDPOINT, HF_TOKEN and HF_HOME are read from the environment', () => {
    const saved = { ...process.env };
    try {
      Object.assign(process.env, { HF_ENDPOINT: 'http://mirror.example/', HF_TOKEN: 't', HF_HOME: '/x/hf' });
      delete process.env.HF_HUB_CACHE;
      const fromEnv = new HubClient();
      expect(fromEnv.endpoint).toBe('http://mirror.example');
      expect(fromEnv.cacheDir).toBe(path.join('/x/hf', 'hub'));
      expect(fromEnv.resolveUrl(REPO, 'a/b c.json', 'main')).toBe('http://mirror.example/test-org/tiny-bitnet/resolve/main/a/b%20c.json');
    } finally {
      for (const key of ['HF_ENDPOINT', 'HF_TOKEN', 'HF_HOME', 'HF_HUB_CACHE']) {
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
      }
    }
  });
});

describe('concurrent downloads', () => {
  test('two downloads of one file fetch its bytes once; a stale lock is taken over', async () => {
    const [a, b] = await Promise.all([client().download(REPO, WEIGHTS), client().download(REPO, WEIGHTS)]);
    expect(a).toBe(b);
    expect(fs.readFileSync(a).equals(hub.file(WEIGHTS).bytes)).toBe(true);
    expect(hub.gets().filter((r) => r.url.startsWith('/lfs/'))).toHaveLength(1);
    expect(fs.readdirSync(path.join(repoDir(), 'blobs'))).toEqual([hub.file(WEIGHTS).etag]);

    const other = scratchDir('hub-stale');
    const blobs = path.join(other, 'models--test-org--tiny-bitnet', 'blobs');
    fs.mkdirSync(blobs, { recursive: true });
    // A lock left by a process that no longer exists (pid numbers this large are not in use).
    fs.writeFileSync(path.join(blobs, `${hub.file(WEIGHTS).etag}.lock`), '999999999');
    const file = await client({ cacheDir: other }).download(REPO, WEIGHTS);
    expect(fs.readFileSync(file).equals(hub.file(WEIGHTS).bytes)).toBe(true);
    expect(fs.readdirSync(blobs)).toEqual([hub.file(WEIGHTS).etag]);
    fs.rmSync(other, { recursive: true, force: true });
  });
});
