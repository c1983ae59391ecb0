import { ChatMessage, isUsableChatTemplate, renderChat } from '../src/chat';
import { Tokenizer } from '../src/tokenizer';
import { BITNET_2B4T_CHAT_TEMPLATE, loadLlama3TokenizerConfig, loadLlama3TokenizerJson } from './tokenizer-fixtures';

const json = loadLlama3TokenizerJson();
const llama3Config = loadLlama3TokenizerConfig();
/** The Llama-3 tokenizer with the 2B4T chat template, as in the 2B4T tokenizer_config.json. */
const tokenizer = Tokenizer.fromHfJson(json, { ...llama3Config, chat_template: BITNET_2B4T_CHAT_TEMPLATE });

const BOS = 128000;
const EOT = 128009;

/** Ids of tokens named by their tokenizer.json strings: a spelling of the expected prompt independent of our encoder. */
function idsOf(...tokens: string[]): number[] {
  return tokens.map((token) => {
    const id = token.startsWith('<|') ? json.added_tokens?.find((added) => added.content === token)?.id : json.model.vocab[token];
    if (id === undefined) throw new Error(`no token ${token}`);
    return id;
  });
}

const conversation: ChatMessage[] = [
  { role: 'system', content: 'You are a helpful AI assistant.' },
  { role: 'user', content: '  Hi there!\n' },
  { role: 'assistant', content: 'Hello.' },
  { role: 'user', content: 'How are you?' },
];

describe('renderChat, BitNet 2B4T format (gpu/ ChatFormat)', () => {
  it('renders a known conversation to the expected ids, each segment encoded separately', () => {
    const rendered = renderChat(tokenizer, conversation, { format: 'bitnet-2b4t' });
    expect(rendered.format).toBe('bitnet-2b4t');
    // <|begin_of_text|>System: You are a helpful AI assistant.<|eot_id|>User: Hi there!<|eot_id|>
    // Assistant: Hello.<|eot_id|>User: How are you?<|eot_id|>Assistant: {generation}
    // "Role: " ends in a space that is its own token ("Ġ"), because segments are encoded separately.
    expect(rendered.ids).toEqual([
      BOS,
      ...idsOf('System', ':', 'Ġ'),
      ...idsOf('You', 'Ġare', 'Ġa', 'Ġhelpful', 'ĠAI', 'Ġassistant', '.'),
      EOT,
      ...idsOf('User', ':', 'Ġ'),
      ...idsOf('Hi', 'Ġthere', '!'),
      EOT,
      ...idsOf('Assistant', ':', 'Ġ'),
      ...idsOf('Hello', '.'),
      EOT,
      ...idsOf('User', ':', 'Ġ'),
      ...idsOf('How', 'Ġare', 'Ġyou', '?'),
      EOT,
      ...idsOf('Assistant', ':', 'Ġ'),
    ]);
    expect(tokenizer.decode(rendered.ids)).toBe(
      '<|begin_of_text|>System: You are a helpful AI assistant.<|eot_id|>User: Hi there!<|eot_id|>' +
        'Assistant: Hello.<|eot_id|>User: How are you?<|eot_id|>Assistant: ',
    );
  });

  it('omits the generation prompt when asked and keeps special-token text in messages as plain text', () => {
    const ids = renderChat(tokenizer, [{ role: 'user', content: 'say <|eot_id|>' }], {
      format: 'bitnet-2b4t',
      addGenerationPrompt: false,
    }).ids;
    expect(ids.filter((id) => id === EOT)).toHaveLength(1);
    expect(ids[ids.length - 1]).toBe(EOT);
    expect(tokenizer.decode(ids)).toBe('<|begin_of_text|>User: say <|eot_id|><|eot_id|>');
  });

  it('strips message content the way Python str.strip() does', () => {
    const ids = renderChat(tokenizer, [{ role: 'user', content: '\u0085\u001c hi \ufeff' }], {
      format: 'bitnet-2b4t',
      addGenerationPrompt: false,
    }).ids;
    expect(tokenizer.decode(ids)).toBe('<|begin_of_text|>User: hi \ufeff<|eot_id|>');
  });

  it('is what auto picks without a usable template (none, or bitnet.cpp\'s placeholder)', () => {
    const placeholder = "{% for message in messages %}Human: {{ message['content'] }}\n\nBITNETAssistant: {{ eos_token }}{% endfor %}";
    expect(isUsableChatTemplate(undefined)).toBe(false);
    expect(isUsableChatTemplate(placeholder)).toBe(false);
    expect(isUsableChatTemplate(BITNET_2B4T_CHAT_TEMPLATE)).toBe(true);
    const rendered = renderChat(tokenizer, conversation, { chatTemplate: placeholder });
    expect(rendered).toEqual(renderChat(tokenizer, conversation, { format: 'bitnet-2b4t' }));
    expect(rendered.format).toBe('bitnet-2b4t');
    expect(() => renderChat(tokenizer, conversation, { format: 'template', chatTemplate: placeholder })).toThrow(/template/);
  });

  it('rejects unknown roles', () => {
    const messages = [{ role: 'tool', content: 'x' }] as unknown as ChatMessage[];
    expect(() => renderChat(tokenizer, messages, { format: 'bitnet-2b4t' })).toThrow(/role/);
  });
});

describe('renderChat, Jinja chat_template path', () => {
  it('renders the 2B4T tokenizer_config template and encodes the whole string with one BOS', () => {
    const rendered = renderChat(tokenizer, conversation);
    expect(rendered.format).toBe('template');
    // Same text as the 2B4T format, but encoded whole: "Role: " joins the content's first word (" You").
    expect(rendered.ids).toEqual([
      BOS,
      ...idsOf('System', ':', 'ĠYou', 'Ġare', 'Ġa', 'Ġhelpful', 'ĠAI', 'Ġassistant', '.', '<|eot_id|>'),
      ...idsOf('User', ':', 'ĠHi', 'Ġthere', '!', '<|eot_id|>'),
      ...idsOf('Assistant', ':', 'ĠHello', '.', '<|eot_id|>'),
      ...idsOf('User', ':', 'ĠHow', 'Ġare', 'Ġyou', '?', '<|eot_id|>'),
      ...idsOf('Assistant', ':', 'Ġ'),
    ]);
    expect(tokenizer.decode(rendered.ids)).toBe(tokenizer.decode(renderChat(tokenizer, conversation, { format: 'bitnet-2b4t' }).ids));
  });

  it('keeps exactly one BOS when the template emits bos_token itself (Llama-3 template)', () => {
    const rendered = renderChat(tokenizer, [{ role: 'user', content: 'Hi' }], {
      chatTemplate: llama3Config.chat_template as string,
    });
    expect(rendered.format).toBe('template');
    expect(rendered.ids).toEqual([
      BOS,
      ...idsOf('<|start_header_id|>', 'user', '<|end_header_id|>', 'ĊĊ', 'Hi', '<|eot_id|>'),
      ...idsOf('<|start_header_id|>', 'assistant', '<|end_header_id|>', 'ĊĊ'),
    ]);
  });

  it('honours addGenerationPrompt', () => {
    const ids = renderChat(tokenizer, [{ role: 'user', content: 'Hi' }], { addGenerationPrompt: false }).ids;
    expect(ids).toEqual([BOS, ...idsOf('User', ':', 'ĠHi', '<|eot_id|>')]);
  });
});
