/**
 * The built CLI as a person runs it: child processes of bin/bitnet-gen.js, and the chat REPL in
 * a tmux pseudo-terminal driven by keystrokes with the screen read back.
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ensureConverted } from '../src/engine/convert';
import { scratchDir, tinyModel } from './helpers/model-files';

const ROOT = path.join(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'bitnet-gen.js');
const hasTmux = spawnSync('tmux', ['-V']).status === 0;
let scratch: string;
let modelFile: string;

beforeAll(() => {
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(ROOT, 'tsconfig.build.json')], { cwd: ROOT });
  scratch = scratchDir('cli-process');
  modelFile = ensureConverted(tinyModel().paths.hf!, { cacheDir: path.join(scratch, 'converted') });
}, 120_000);

afterAll(() => {
  fs.rmSync(scratch, { recursive: true, force: true });
});

test('the built binary streams an answer to stdout and exits 0; an error exits 1 with one line', () => {
  const ok = spawnSync(process.execPath, [BIN, '-m', modelFile, '-t', '1', '--raw', '-n', '5', '--temperature', '0', '--ignore-eos', '--json', 'hi'], { encoding: 'utf8' });
  expect(ok.status).toBe(0);
  expect(JSON.parse(ok.stdout).tokens).toHaveLength(5);
  const piped = spawnSync(process.execPath, [BIN, '-m', modelFile, '-t', '1', '--raw', '-n', '5', '--temperature', '0', '--ignore-eos', '--json'], { encoding: 'utf8', input: 'hi' });
  expect(JSON.parse(piped.stdout).tokens).toEqual(JSON.parse(ok.stdout).tokens);
  const bad = spawnSync(process.execPath, [BIN, '--max-tokens', 'many', 'hi'], { encoding: 'utf8' });
  expect(bad.status).toBe(1);
  expect(bad.stderr).toBe("bitnet-gen: option '-n, --max-tokens <n>' argument 'many' is invalid. expected an integer >= 0.\n");
});

(hasTmux ? describe : describe.skip)('chat in a terminal (tmux)', () => {
  const session = `bitnet-cli-${process.pid}`;
  const tmux = (...args: string[]) => execFileSync('tmux', args, { encoding: 'utf8' });
  const screen = () => tmux('capture-pane', '-p', '-J', '-S', '-200', '-t', session);
  const keys = (...k: string[]) => tmux('send-keys', '-t', session, ...k);

  async function waitFor(what: RegExp, timeoutMs = 10_000): Promise<string> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const text = screen();
      if (what.test(text)) return text;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; the screen shows:\n${text}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  function start(extra: string): void {
    const command = `${process.execPath} ${BIN} chat -m ${modelFile} -t 1 --temperature 0 --ignore-eos ${extra}; echo CHAT-EXITED-$?; sleep 30`;
    tmux('new-session', '-d', '-s', session, '-x', '200', '-y', '50', command);
  }

  afterEach(() => {
    spawnSync('tmux', ['kill-session', '-t', session]);
  });

  test('Ctrl-C stops an answer, the cache is reused next turn, /save /system /reset work, Ctrl-C at the prompt quits', async () => {
    start('-n 1000000 -c 60000 --verbose');
    await waitFor(/\/help for commands\n> $/m);
    keys('hello', 'Enter');
    await waitFor(/> hello\n./);
    await new Promise((resolve) => setTimeout(resolve, 200));
    keys('C-c');
    const first = /\[stopped\]\nprompt: (\d+) tokens \(0 reused\)[^\n]*stop: aborted/.exec(await waitFor(/\[stopped\]\n.*stop: aborted/));
    expect(first).not.toBeNull();
    keys('again', 'Enter');
    await new Promise((resolve) => setTimeout(resolve, 200));
    keys('C-c');
    // The second turn starts with the first turn's prompt, which the KV cache still holds.
    const second = /> again\n[\s\S]*\[stopped\]\nprompt: \d+ tokens \((\d+) reused\)[^\n]*stop: aborted/.exec(await waitFor(/> again\n[\s\S]*stop: aborted/, 20_000));
    expect(Number(second![1])).toBeGreaterThanOrEqual(Number(first![1]));
    const saved = path.join(scratch, 'conversation.json');
    keys(`/save ${saved}`, 'Enter');
    await waitFor(/saved 4 messages to /);
    const conversation = JSON.parse(fs.readFileSync(saved, 'utf8'));
    expect(conversation.messages.map((m: { role: string }) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    expect(conversation.messages[2].content).toBe('again');
    keys('/system Answer briefly.', 'Enter');
    await waitFor(/system message set; conversation cleared/);
    keys('/reset', 'Enter');
    await waitFor(/^conversation cleared$/m);
    keys('/bogus', 'Enter');
    await waitFor(/unknown command \/bogus/);
    keys('C-c');
    await waitFor(/CHAT-EXITED-0/);
  }, 60_000);

  test('Ctrl-D quits', async () => {
    start('-n 4');
    await waitFor(/\/help for commands\n> $/m);
    keys('hi', 'Enter');
    await waitFor(/\n> $/m);
    keys('C-d');
    await waitFor(/CHAT-EXITED-0/);
  }, 30_000);
});
