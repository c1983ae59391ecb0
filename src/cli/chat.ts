/**
 * `bitnet-gen chat`: an interactive conversation over one Session, whose KV cache keeps the
 * earlier turns. Ctrl-C stops the answer being generated; Ctrl-C at the prompt or Ctrl-D quits.
 */
import * as fs from 'fs';
import * as readline from 'readline';
import { Command } from 'commander';
import { terminalSafe, write } from './io';
import type { CliIo } from './io';
import { addModelOptions, loadModel } from './options';
import type { ModelOptions } from './options';
import { addSamplingOptions, generateOptions, timingsLine } from './generate';
import type { SamplingCliOptions } from './generate';

const HELP = [
  'commands:',
  '  /reset         forget the conversation',
  '  /system TEXT   set the system message (empty TEXT removes it)',
  '  /save FILE     write the conversation as JSON',
  '  /help          this list',
  '  /quit          leave (also Ctrl-D, or Ctrl-C at the prompt)',
  'Ctrl-C while the model answers stops the answer.',
].join('\n');

type ChatCliOptions = ModelOptions & SamplingCliOptions;

/** Runs the chat loop until the user quits or stdin ends. */
export async function runChat(options: ChatCliOptions, io: CliIo): Promise<void> {
  const model = await loadModel(options, io);
  const session = model.createSession({ contextSize: options.ctx });
  let system = options.system;
  const terminal = io.stdin.isTTY === true;
  const rl = readline.createInterface({ input: io.stdin, output: io.stdout, terminal, prompt: '> ' });
  let answering: AbortController | null = null;
  rl.on('SIGINT', () => {
    if (answering) answering.abort();
    else rl.close();
  });
  const say = (text: string) => write(io.stdout, text);
  await say(`chatting with ${model.path} (${model.runtime.isa}, ${model.runtime.threads} threads, context ${session.contextSize}); /help for commands\n`);
  rl.prompt();
  // Ends on Ctrl-D, rl.close(), or the end of a piped stdin (after its buffered lines).
  for await (const line of rl) {
    const input = line.trim();
    if (input.startsWith('/')) {
      const command = input.split(/\s+/, 1)[0];
      const argument = input.slice(command.length).trim();
      switch (command) {
        case '/quit':
        case '/exit':
          rl.close();
          continue;
        case '/reset':
          session.reset();
          await say('conversation cleared\n');
          break;
        case '/system':
          system = argument === '' ? undefined : argument;
          session.reset();
          await say(system === undefined ? 'system message removed; conversation cleared\n' : 'system message set; conversation cleared\n');
          break;
        case '/save':
          if (argument === '') await say('usage: /save FILE\n');
          else await say(saveConversation(argument, model.path, system, session.messages));
          break;
        case '/help':
          await say(`${HELP}\n`);
          break;
        default:
          await say(`unknown command ${command}; /help lists the commands\n`);
      }
    } else if (input !== '') {
      answering = new AbortController();
      try {
        const stream = session.chat(input, { ...generateOptions(options, answering.signal), system });
        for await (const chunk of stream) if (chunk.text) await say(terminalSafe(chunk.text));
        const result = await stream.result;
        await say(result.stopReason === 'aborted' ? ' [stopped]\n' : '\n');
        if (result.stopReason === 'context-full') await say('[the context is full: /reset to start over, or use a larger --ctx]\n');
        if (options.verbose) await write(io.stderr, `${timingsLine(result)}\n`);
      } catch (error) {
        // A turn that does not fit is the user's to fix; the chat goes on.
        if (!(error instanceof RangeError)) throw error;
        await say(`error: ${error.message}\n`);
      } finally {
        answering = null;
      }
    }
    rl.prompt();
  }
  if (terminal) await say('\n');
}

function saveConversation(file: string, modelPath: string, system: string | undefined, messages: readonly unknown[]): string {
  try {
    fs.writeFileSync(file, `${JSON.stringify({ model: modelPath, system: system ?? null, messages, savedAt: new Date().toISOString() }, null, 2)}\n`);
    return `saved ${messages.length} messages to ${file}\n`;
  } catch (error) {
    return `cannot save to ${file}: ${(error as Error).message}\n`;
  }
}

/** Adds the `chat` command. */
export function addChatCommand(program: Command, io: CliIo): void {
  const command = program.command('chat').description('interactive chat in the terminal (/help inside for commands)');
  addSamplingOptions(addModelOptions(command)).action((options: ChatCliOptions) => runChat(options, io));
}
