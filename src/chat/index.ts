import { Template } from '@huggingface/jinja';
import type { Tokenizer } from '../tokenizer';

/** Speaker of a chat message. */
export type ChatRole = 'system' | 'user' | 'assistant';

/** One message of a conversation. */
export interface ChatMessage {
  role: ChatRole;
  content: string;
}

/**
 * How a conversation was turned into tokens:
 * - `template`: the model's Jinja chat template, rendered and encoded as one string;
 * - `bitnet-2b4t`: the BitNet b1.58 2B4T format of bitnet.cpp gpu/ ChatFormat, each segment encoded separately.
 */
export type ChatFormat = 'template' | 'bitnet-2b4t';

/** Options for {@link renderChat}. */
export interface RenderChatOptions {
  /**
   * `auto` (default) uses the Jinja template when one is usable (see {@link isUsableChatTemplate})
   * and otherwise the 2B4T format; the other values force one path.
   */
  format?: 'auto' | ChatFormat;
  /** Jinja template to use. Default: the tokenizer's own (`tokenizer.chatTemplate`). */
  chatTemplate?: string;
  /** End with the opening of an assistant turn so the model writes the reply. Default true. */
  addGenerationPrompt?: boolean;
}

/** A conversation ready for the model. */
export interface RenderedChat {
  /** Prompt ids, starting with exactly one BOS. */
  ids: number[];
  /** The path that produced `ids`. */
  format: ChatFormat;
}

/**
 * bitnet.cpp's converters embed a placeholder template containing "BITNET" only so that
 * llama.cpp's detector picks its hard-coded format; it is not the model's prompt format.
 */
const BITNET_CPP_PLACEHOLDER_MARKER = 'BITNET';

const ROLE_PREFIX: Readonly<Record<ChatRole, string>> = {
  system: 'System: ',
  user: 'User: ',
  assistant: 'Assistant: ',
};

/** Python's str.strip() whitespace (gpu/ ChatFormat strips with it); differs from JS trim() at U+001C-U+001F, U+0085, U+FEFF. */
const PYTHON_STRIP = /^[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;

/** Whether `template` is a real chat template rather than absent or bitnet.cpp's placeholder. */
export function isUsableChatTemplate(template: string | undefined): template is string {
  return template !== undefined && template.trim() !== '' && !template.includes(BITNET_CPP_PLACEHOLDER_MARKER);
}

/**
 * Turns a conversation into prompt ids.
 * @throws if `format` is `template` and no usable template is available, or a role is unknown.
 */
export function renderChat(tokenizer: Tokenizer, messages: readonly ChatMessage[], options: RenderChatOptions = {}): RenderedChat {
  const template = options.chatTemplate ?? tokenizer.chatTemplate;
  const addGenerationPrompt = options.addGenerationPrompt ?? true;
  const format = options.format ?? 'auto';
  if (format === 'template' || (format === 'auto' && isUsableChatTemplate(template))) {
    if (!isUsableChatTemplate(template)) throw new Error('no usable chat template: the model has none or only bitnet.cpp\'s placeholder');
    return { ids: renderWithTemplate(tokenizer, template, messages, addGenerationPrompt), format: 'template' };
  }
  return { ids: renderBitnet2b4t(tokenizer, messages, addGenerationPrompt), format: 'bitnet-2b4t' };
}

/**
 * 2B4T format (reference 5.6): `[BOS]`, then per message encode("Role: ") + encode(content.strip())
 * + `<|eot_id|>`, then encode("Assistant: ") for the generation prompt. Segments are encoded
 * separately, as gpu/ does, which differs from encoding the joined string at segment boundaries.
 */
function renderBitnet2b4t(tokenizer: Tokenizer, messages: readonly ChatMessage[], addGenerationPrompt: boolean): number[] {
  const eotId = tokenizer.eotId;
  if (eotId === undefined) throw new Error('the 2B4T chat format needs an <|eot_id|> token');
  const encodeSegment = (text: string): number[] => tokenizer.encode(text, { addBos: false });
  const ids = [tokenizer.bosId];
  for (const message of messages) {
    const prefix = ROLE_PREFIX[message.role];
    if (prefix === undefined) throw new Error(`unknown chat role ${JSON.stringify(message.role)}`);
    appendAll(ids, encodeSegment(prefix));
    appendAll(ids, encodeSegment(message.content.replace(PYTHON_STRIP, '')));
    ids.push(eotId);
  }
  if (addGenerationPrompt) appendAll(ids, encodeSegment(ROLE_PREFIX.assistant));
  return ids;
}

/** push(...source) overflows the call stack for very long messages. */
function appendAll(target: number[], source: readonly number[]): void {
  for (const id of source) target.push(id);
}

/** Renders the Jinja template and encodes it whole, with special-token text recognised and exactly one leading BOS. */
function renderWithTemplate(
  tokenizer: Tokenizer,
  template: string,
  messages: readonly ChatMessage[],
  addGenerationPrompt: boolean,
): number[] {
  const text = new Template(template).render({
    messages: messages.map((message) => ({ role: message.role, content: message.content })),
    bos_token: tokenizer.tokenString(tokenizer.bosId),
    eos_token: tokenizer.tokenString(tokenizer.eosId),
    add_generation_prompt: addGenerationPrompt,
  });
  const ids = tokenizer.encode(text, { addBos: false, allowSpecial: true });
  let firstNonBos = 0;
  while (firstNonBos < ids.length && ids[firstNonBos] === tokenizer.bosId) firstNonBos++;
  return [tokenizer.bosId, ...ids.slice(firstNonBos)];
}
