import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { BenchWorker } from '../src/bench/workers';

/**
 * A worker that speaks the benchmark protocol and, asked to exit, answers at once but leaves only
 * 300 ms later, writing `marker` just before it goes (as a worker still tearing down would).
 */
function lingeringWorker(marker: string): string {
  return `
const lines = require('readline').createInterface({ input: process.stdin });
console.log(JSON.stringify({ ready: true, loadMs: 1, backend: 'fake', threads: 1 }));
lines.on('line', (line) => {
  if (line !== '{}') return;
  console.log(JSON.stringify({ maxRssBytes: 1234 }));
  setTimeout(() => { require('fs').writeFileSync(${JSON.stringify(marker)}, 'gone'); process.exit(0); }, 300);
});`;
}

describe('BenchWorker', () => {
  it('close() returns the peak RSS once the worker process has exited, not when it answers', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-worker-'));
    try {
      const marker = path.join(dir, 'exited');
      const { worker, ready } = await BenchWorker.start('fake', ['-e', lingeringWorker(marker)]);
      expect(ready.backend).toBe('fake');
      expect(await worker.close()).toBe(1234);
      expect(fs.existsSync(marker)).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
