import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import {
  BYTE_TO_CHAR,
  GgufTokenizerMetadata,
  HfTokenizerJson,
  StreamDecoder,
  Tokenizer,
  bytesToTokenString,
  loadHfTokenizer,
  pretokenize,
  readGgufTokenizerMetadata,
  tokenStringToBytes,
} from '../src/tokenizer';
import { LLAMA3_MODEL_DIR, loadLlama3TokenizerConfig, loadLlama3TokenizerJson, seededRandom } from './tokenizer-fixtures';

const json = loadLlama3TokenizerJson();
const config = loadLlama3TokenizerConfig();
const tokenizer = loadHfTokenizer(LLAMA3_MODEL_DIR);
/** HF reference that recognises special-token text (our allowSpecial: true). */
const hfWithSpecial = new HfTokenizer(json, config);
/** HF reference without added tokens: special-token text is ordinary text (our default). */
const hfPlain = new HfTokenizer({ ...json, added_tokens: [] }, { ...config, bos_token: null, eos_token: null });

const BOS = 128000;
const EOS = 128001;
const EOT = 128009;


const CODE_POINT_POOLS: ReadonlyArray<readonly [number, number]> = [
  [0x20, 0x7e], // ASCII printable
  [0x09, 0x0d], // tab, newlines, vertical tab, form feed
  [0x80, 0x17e], // C1 controls (incl. U+0085), Latin-1, Latin Extended-A (stops before U+017F)
  [0x300, 0x36f], // combining marks
  [0x391, 0x3c9], // Greek
  [0x400, 0x4ff], // Cyrillic
  [0x5d0, 0x5ea], // Hebrew
  [0x660, 0x669], // Arabic-Indic digits
  [0x900, 0x97f], // Devanagari
  [0x2000, 0x206f], // Unicode spaces, ZWJ, punctuation
  [0x3000, 0x30ff], // CJK punctuation, ideographic space, kana
  [0x4e00, 0x9fff], // CJK ideographs
  [0xac00, 0xd7a3], // Hangul
  [0xfe00, 0xfeff], // variation selectors ... U+FEFF
  [0x1f300, 0x1faff], // emoji
  [0x1d400, 0x1d7ff], // mathematical alphanumerics (letters and digits outside the BMP)
  [0x10000, 0x10ffff], // anywhere in the supplementary planes
];
const FRAGMENTS = ["'s", "'S", "'ll", "'LL", "'Re", "'ve", "'d", "'t", "'m", ' ', '  ', '\r\n', '\n\n', '123', '\u200d', '<|eot_id|>'];

function randomText(random: () => number): string {
  const length = 1 + Math.floor(random() * 40);
  let text = '';
  for (let i = 0; i < length; i++) {
    if (random() < 0.15) {
      text += FRAGMENTS[Math.floor(random() * FRAGMENTS.length)];
      continue;
    }
    const [low, high] = CODE_POINT_POOLS[Math.floor(random() * CODE_POINT_POOLS.length)];
    const codePoint = low + Math.floor(random() * (high - low + 1));
    text += String.fromCodePoint(codePoint >= 0xd800 && codePoint <= 0xdfff ? 0xfffd : codePoint);
  }
  return text;
}

const CORPUS: readonly string[] = [
  'Hello world',
  'The quick brown fox jumps over the lazy dog.',
  "It's, I'M, we'LL, they'RE, you'Ve, he'D, can'T, 'S alone, O'Neil's",
  "Mixed case contractions: 'sS 'Ll 'lL 'rE 'vE 'Dd and quotes ''s '''",
  'function add(a: number, b: number): number {\n\treturn a + b; // sum\n}\n',
  'for (let i = 0; i < 10; i++) { console.log(`i=${i}`); }\r\n',
  'def f(x):\n    if x > 0:\n        return x ** 2\n    return -x\n',
  '<div class="a">&amp; &lt;tag&gt;</div>',
  '日本語のテキストを少し混ぜます。中文也可以。한국어도 있습니다.',
  // Whole-token pieces that merging alone would split: ignore_merges must be honoured.
  'Tiếng Việt có nhiều việc hợp điều ngoài nhiên; ektedir jeho ایران',
  'Привет, мир! Ελληνικά. עברית. العربية ١٢٣٤٥. हिन्दी में लिखा है।',
  '👍 👨‍👩‍👧‍👦 🏳️‍🌈 👩🏽‍💻 🇫🇷🇯🇵 ❤️ 1️⃣ #️⃣',
  'e\u0301 a\u0308 n\u0303 Z\u0335\u0321\u031b̴a\u0362l\u0363g\u0367o combining marks',
  ' '.repeat(1000) + 'x',
  'a' + ' '.repeat(257) + 'b' + '\t'.repeat(33) + 'c',
  '\n'.repeat(500),
  'line1\r\nline2\r\n\r\n\r\nline3\n\n\n \n \t\n',
  '   leading spaces and trailing spaces   ',
  '\t\ttabs\tin\tthe\tmiddle\t\t',
  '3.14159265358979323846264338327950288419716939937510',
  '1234567890 12 123 1234 12345 123456 0x1F 1e-10 1,000,000',
  '!!!??? ... --- *** ### $$$ %%% ^^^ &&& ((( ))) [[[ ]]] {{{ }}} ::: ;;;',
  '"quoted" \'single\' `backtick` «guillemets» „low“ ‘curly’',
  'special text <|begin_of_text|> and <|eot_id|> and <|end_of_text|><|start_header_id|>user<|end_header_id|>',
  '<|reserved_special_token_250|><|eot_id|><|eot_id|>',
  '<|not_a_token|> <| eot_id |>',
  '\u00a0non-breaking\u00a0space \u3000ideographic\u3000space \u2003em\u2003space \u0085next-line\u0085',
  '\ufeffbyte order mark at the start',
  'ＡＢＣ fullwidth ｱｲｳ halfwidth',
  'x'.repeat(3000),
  'Supercalifragilisticexpialidocious antidisestablishmentarianism',
  '',
  ' ',
  "'",
  "'s",
];

describe('pretokenize (Llama-3 regex)', () => {
  it('splits words, contractions, number triples and whitespace like the reference regex', () => {
    expect(pretokenize("Hello world, it's 12345!")).toEqual(['Hello', ' world', ',', ' it', "'s", ' ', '123', '45', '!']);
    expect(pretokenize('a   b\n\n c')).toEqual(['a', '  ', ' b', '\n\n', ' c']);
    expect(pretokenize("WE'LL 'Ve")).toEqual(['WE', "'LL", " '", 'Ve']);
  });

  it('treats U+0085 as whitespace and U+FEFF as not (Unicode White_Space, not JS \\s)', () => {
    expect(pretokenize('a\u0085\u0085b')).toEqual(['a', '\u0085', '\u0085b']);
    expect(pretokenize('a \ufeffb')).toEqual(['a', ' \ufeff', 'b']);
  });

  it("folds U+017F LONG S to s inside the case-insensitive contraction group, as Oniguruma and tiktoken do", () => {
    expect(pretokenize("x'ſt")).toEqual(['x', "'ſ", 't']);
  });

  it('covers every character of the input', () => {
    const random = seededRandom(7);
    for (let i = 0; i < 200; i++) {
      const text = randomText(random);
      expect(pretokenize(text).join('')).toBe(text);
    }
  });
});

describe('byte-level alphabet', () => {
  it('maps bytes as GPT-2 does and round-trips', () => {
    expect(BYTE_TO_CHAR[0x20]).toBe('Ġ');
    expect(BYTE_TO_CHAR[0x0a]).toBe('Ċ');
    expect(BYTE_TO_CHAR[0x41]).toBe('A');
    expect(BYTE_TO_CHAR[0xad]).toBe('\u0143');
    expect(new Set(BYTE_TO_CHAR).size).toBe(256);
    const allBytes = Uint8Array.from({ length: 256 }, (_, byte) => byte);
    expect(tokenStringToBytes(bytesToTokenString(allBytes))).toEqual(allBytes);
    expect(tokenStringToBytes('<|eot_id|>\u4e00')).toBeUndefined();
  });

  it('agrees with the vocabulary ids of single bytes (reference 5.1)', () => {
    expect(tokenizer.tokenBytes(0)).toEqual(Uint8Array.of(0x21));
    expect(tokenizer.tokenBytes(188)).toEqual(Uint8Array.of(0x00));
    expect(tokenizer.tokenBytes(220)).toEqual(Uint8Array.of(0x20));
    expect(tokenizer.decode([256])).toBe('  ');
    expect(tokenizer.decode([258])).toBe('in');
    expect(tokenizer.decode([259])).toBe(' t');
  });
});

describe('Tokenizer loaded from the Llama-3 tokenizer.json', () => {
  it('exposes the special tokens', () => {
    expect(tokenizer.vocabSize).toBe(128256);
    expect(tokenizer.bosId).toBe(BOS);
    expect(tokenizer.eosId).toBe(EOS);
    expect(tokenizer.eotId).toBe(EOT);
    expect(tokenizer.stopTokenIds).toEqual([EOS, EOT]);
    // 2B4T's tokenizer_config names <|eot_id|> as its EOS: the stop list holds it once.
    expect(Tokenizer.fromHfJson(json, { ...config, eos_token: '<|eot_id|>' }).stopTokenIds).toEqual([EOT]);
    expect(tokenizer.chatTemplate).toBe(config.chat_template);
    expect(tokenizer.addBosByDefault).toBe(true);
    expect(tokenizer.isSpecial(BOS)).toBe(true);
    expect(tokenizer.isSpecial(128255)).toBe(true);
    expect(tokenizer.isSpecial(9906)).toBe(false);
    expect(tokenizer.tokenString(EOT)).toBe('<|eot_id|>');
    expect(tokenizer.tokenString(9906)).toBe('Hello');
    expect(tokenizer.tokenId('ĠWorld')).toBe(4435);
    expect(tokenizer.tokenId('<|begin_of_text|>')).toBe(BOS);
    expect(() => tokenizer.tokenBytes(128256)).toThrow(RangeError);
  });

  it('prepends BOS by default and only when asked', () => {
    expect(tokenizer.encode('Hello World')).toEqual([BOS, 9906, 4435]);
    expect(tokenizer.encode('Hello World', { addBos: false })).toEqual([9906, 4435]);
    expect(tokenizer.encode('')).toEqual([BOS]);
  });

  it('encodes special-token text as plain text unless allowSpecial', () => {
    const plain = tokenizer.encode('a<|eot_id|>b', { addBos: false });
    expect(plain).not.toContain(EOT);
    expect(tokenizer.decode(plain)).toBe('a<|eot_id|>b');
    expect(tokenizer.encode('a<|eot_id|>b', { addBos: false, allowSpecial: true })).toEqual([
      ...tokenizer.encode('a', { addBos: false }),
      EOT,
      ...tokenizer.encode('b', { addBos: false }),
    ]);
  });

  it('matches @huggingface/tokenizers id for id on the corpus', () => {
    for (const text of CORPUS) {
      expect({ text, ids: tokenizer.encode(text, { addBos: false }) }).toEqual({
        text,
        ids: hfPlain.encode(text, { add_special_tokens: false }).ids,
      });
      expect({ text, ids: tokenizer.encode(text, { addBos: false, allowSpecial: true }) }).toEqual({
        text,
        ids: hfWithSpecial.encode(text, { add_special_tokens: false }).ids,
      });
    }
  });

  it('matches @huggingface/tokenizers on 400 seeded random Unicode strings and round-trips them', () => {
    const random = seededRandom(20240601);
    for (let i = 0; i < 400; i++) {
      const text = randomText(random);
      const ids = tokenizer.encode(text, { addBos: false });
      expect({ text, ids }).toEqual({ text, ids: hfPlain.encode(text, { add_special_tokens: false }).ids });
      expect(tokenizer.decode(ids)).toBe(text);
    }
  });

  it('decodes what it encodes', () => {
    for (const text of CORPUS) {
      expect(tokenizer.decode(tokenizer.encode(text, { addBos: false }))).toBe(text);
      expect(tokenizer.decode(tokenizer.encode(text, { allowSpecial: true }), { skipSpecial: true })).toBe(
        text.replace(/<\|(begin_of_text|end_of_text|eot_id|start_header_id|end_header_id|reserved_special_token_\d+)\|>/g, ''),
      );
    }
    expect(tokenizer.decode([BOS, 9906, EOT])).toBe('<|begin_of_text|>Hello<|eot_id|>');
  });

  it('encodes a long mixed text like @huggingface/tokenizers (exercises the piece cache)', () => {
    const text = CORPUS.join('\n').repeat(3);
    expect(tokenizer.encode(text, { addBos: false, allowSpecial: true })).toEqual(
      hfWithSpecial.encode(text, { add_special_tokens: false }).ids,
    );
  });

  it('rejects tokenizer.json files that are not Llama-3 byte-level BPE', () => {
    const gpt2PreTokenizer = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
    expect(() => Tokenizer.fromHfJson({ ...json, pre_tokenizer: gpt2PreTokenizer })).toThrow(/pre-tokenizer/);
    expect(() => Tokenizer.fromHfJson({ ...json, model: { ...json.model, type: 'Unigram' } })).toThrow(/Unigram/);
  });
});

describe('StreamDecoder', () => {
  const multiByteTexts = [
    '日本語のテキスト 中文 한국어',
    '👨‍👩‍👧‍👦 family, 🏳️‍🌈 flag, 👩🏽‍💻 coder',
    'e\u0301 combining, Ελληνικά, Привет',
    'mixed ascii and 🎉 emoji 𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
  ];

  it('emits the full decode token by token without ever emitting U+FFFD for valid text', () => {
    const random = seededRandom(99);
    const texts = [...multiByteTexts, ...CORPUS, ...Array.from({ length: 100 }, () => randomText(random))];
    let tokensSplittingACharacter = 0;
    for (const text of texts.filter((candidate) => !candidate.includes('\ufffd'))) {
      const ids = tokenizer.encode(text, { addBos: false });
      const decoder = new StreamDecoder(tokenizer);
      let streamed = '';
      for (const id of ids) {
        const chunk = decoder.push(id);
        expect(chunk).not.toContain('\ufffd');
        if (chunk === '') tokensSplittingACharacter++;
        streamed += chunk;
      }
      streamed += decoder.flush();
      expect(streamed).toBe(tokenizer.decode(ids));
      expect(streamed).toBe(text);
    }
    expect(tokensSplittingACharacter).toBeGreaterThan(0);
  });

  it('holds an incomplete character and flushes it as U+FFFD', () => {
    const euro = tokenizer.tokenId(bytesToTokenString([0xe2])) as number;
    const decoder = new StreamDecoder(tokenizer);
    expect(decoder.push(euro)).toBe('');
    expect(decoder.flush()).toBe('\ufffd');
  });

  it('skips special tokens when asked', () => {
    const decoder = new StreamDecoder(tokenizer, { skipSpecial: true });
    const text = [BOS, 9906, EOT].map((id) => decoder.push(id)).join('') + decoder.flush();
    expect(text).toBe('Hello');
  });
});

describe('Tokenizer built from GGUF tokenizer metadata', () => {
  /** The GGUF form of the same tokenizer: all tokens by id, GPT-2 strings, "a b" merges, types 1 / 3. */
  function ggufMetadataOf(source: HfTokenizerJson): Map<string, unknown> {
    const addedTokens = source.added_tokens ?? [];
    const size = Object.keys(source.model.vocab).length + addedTokens.length;
    const tokens = new Array<string>(size);
    const tokenTypes = new Array<number>(size).fill(1);
    for (const [token, id] of Object.entries(source.model.vocab)) tokens[id] = token;
    for (const token of addedTokens) {
      tokens[token.id] = token.content;
      tokenTypes[token.id] = 3;
    }
    const merges = source.model.merges.map((merge) => (typeof merge === 'string' ? merge : merge.join(' ')));
    return new Map<string, unknown>([
      ['tokenizer.ggml.model', 'gpt2'],
      ['tokenizer.ggml.tokens', tokens],
      ['tokenizer.ggml.token_type', tokenTypes],
      ['tokenizer.ggml.merges', merges],
      ['tokenizer.ggml.bos_token_id', BOS],
      ['tokenizer.ggml.eos_token_id', EOS],
      ['tokenizer.ggml.add_bos_token', true],
    ]);
  }

  const ggufKeys = ggufMetadataOf(json);
  const metadata: GgufTokenizerMetadata = readGgufTokenizerMetadata(ggufKeys);
  const fromGguf = Tokenizer.fromGguf(metadata);

  it('gives the same ids and special tokens as the tokenizer.json path', () => {
    expect(fromGguf.vocabSize).toBe(tokenizer.vocabSize);
    expect(fromGguf.bosId).toBe(BOS);
    expect(fromGguf.eosId).toBe(EOS);
    expect(fromGguf.stopTokenIds).toEqual([EOS, EOT]);
    const random = seededRandom(5);
    for (const text of [...CORPUS, ...Array.from({ length: 100 }, () => randomText(random))]) {
      expect(fromGguf.encode(text)).toEqual(tokenizer.encode(text));
      expect(fromGguf.encode(text, { allowSpecial: true })).toEqual(tokenizer.encode(text, { allowSpecial: true }));
    }
  });

  /** A tiny vocabulary: the 256 bytes (id = byte), "ab", two control tokens and a user-defined token. */
  function tinyGgufMetadata(): GgufTokenizerMetadata {
    const tokens = [...BYTE_TO_CHAR, 'ab', '<|begin_of_text|>', '<|end_of_text|>', '<tool>'];
    return { tokens, merges: ['a b'], tokenTypes: [...new Array<number>(257).fill(1), 3, 3, 4] };
  }

  it('finds BOS and EOS by name when the ids are not in the metadata, and has no <|eot_id|>', () => {
    const tiny = Tokenizer.fromGguf(tinyGgufMetadata());
    expect([tiny.bosId, tiny.eosId, tiny.eotId]).toEqual([257, 258, undefined]);
    expect(tiny.stopTokenIds).toEqual([258]);
    expect(tiny.encode('abc')).toEqual([257, 256, 0x63]);
  });

  it('honours add_bos_token = false', () => {
    expect(Tokenizer.fromGguf({ ...tinyGgufMetadata(), addBos: false }).encode('ab')).toEqual([256]);
  });

  it('matches user-defined tokens in any text and control tokens only with allowSpecial', () => {
    const tiny = Tokenizer.fromGguf(tinyGgufMetadata());
    const toolId = 259;
    expect(tiny.isSpecial(toolId)).toBe(false);
    expect(tiny.isSpecial(257)).toBe(true);
    expect(tiny.encode('ab<tool>ab', { addBos: false })).toEqual([256, toolId, 256]);
    expect(tiny.encode('<|end_of_text|>', { addBos: false })).not.toContain(258);
    expect(tiny.encode('<|end_of_text|>', { addBos: false, allowSpecial: true })).toEqual([258]);
  });

  it('rejects non-gpt2 tokenizers and malformed arrays', () => {
    expect(() => readGgufTokenizerMetadata(new Map([...ggufKeys, ['tokenizer.ggml.model', 'llama']]))).toThrow(/gpt2/);
    expect(() => readGgufTokenizerMetadata(new Map([...ggufKeys, ['tokenizer.ggml.token_type', [1, 3]]]))).toThrow(
      /token_type/,
    );
    expect(() => readGgufTokenizerMetadata(new Map([...ggufKeys, ['tokenizer.ggml.merges', undefined]]))).toThrow(/merges/);
  });
});
