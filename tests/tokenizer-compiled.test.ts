/**
 * The compiled tokenizer form (tokenizer.bin): built from the real Llama-3 tokenizer.json it
 * behaves exactly like the JSON-built tokenizer, survives being stored in and loaded from a
 * converted model file, and damaged blobs fail with a clear error.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { BitNetModel } from '../src/engine/model';
import { convertModel } from '../src/engine/convert';
import { readBitplaneHeader, TOKENIZER_BLOB, TOKENIZER_COMPILED_BLOB, TOKENIZER_CONFIG_BLOB } from '../src/formats/bitplane-file';
import { BYTE_TO_CHAR, Tokenizer } from '../src/tokenizer';
import { COMPILED_TOKENIZER_VERSION, CompiledTokenizerError } from '../src/tokenizer/compiled';
import { modelFileError, scratchDir, tinyModel } from './helpers/model-files';
import { BITNET_2B4T_CHAT_TEMPLATE, loadLlama3TokenizerConfig, loadLlama3TokenizerJson, seededRandom } from './tokenizer-fixtures';

const fromJson = Tokenizer.fromHfJson(loadLlama3TokenizerJson(), {
  ...loadLlama3TokenizerConfig(),
  chat_template: BITNET_2B4T_CHAT_TEMPLATE,
});
const blob = fromJson.toCompiled();
const compiled = Tokenizer.fromCompiled(blob);


const SEPARATORS = [' ', '', '', '\n', '  ', '\t', ', ', "'s ", '123', ' 😀', 'é', '<|eot_id|>'];

/** Texts made by decoding random vocabulary tokens with separators: every merge path gets exercised. */
function vocabularyTexts(count: number, seed: number): string[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => {
    let text = '';
    const pieces = 1 + Math.floor(random() * 12);
    for (let i = 0; i < pieces; i++) {
      text += fromJson.decode([Math.floor(random() * 128000)]);
      text += SEPARATORS[Math.floor(random() * SEPARATORS.length)];
    }
    return text;
  });
}

const CORPUS = [
  '',
  'Hello world',
  "It's a test: we'LL see, they'RE sure 1234567 times.",
  'function f(x) {\n\treturn x * 2; // double\n}\r\n',
  '日本語のテキスト。中文。한국어. Привет, мир! Ελληνικά. العربية ١٢٣',
  '👨‍👩‍👧‍👦 🏳️‍🌈 e\u0301 \ufeffBOM \u00a0nbsp \u3000 \u0085',
  'Tiếng Việt có nhiều việc hợp điều ngoài nhiên',
  '<|begin_of_text|><|start_header_id|>user<|end_header_id|>hi<|eot_id|><|reserved_special_token_7|>',
  ' '.repeat(300) + 'x' + '\n'.repeat(40),
  'z'.repeat(2000),
  ...vocabularyTexts(300, 11),
];

describe('compiled Llama-3 tokenizer', () => {
  it('has the same ids, special tokens and chat template as the tokenizer.json path', () => {
    expect(compiled.vocabSize).toBe(128256);
    expect(compiled.vocabSize).toBe(fromJson.vocabSize);
    expect([compiled.bosId, compiled.eosId, compiled.eotId]).toEqual([128000, 128001, 128009]);
    expect(compiled.stopTokenIds).toEqual(fromJson.stopTokenIds);
    expect(compiled.addBosByDefault).toBe(fromJson.addBosByDefault);
    expect(compiled.chatTemplate).toBe(BITNET_2B4T_CHAT_TEMPLATE);
  });

  it('encodes the corpus to identical ids, with and without allowSpecial and BOS', () => {
    for (const text of CORPUS) {
      const expected = fromJson.encode(text);
      expect(compiled.encode(text)).toEqual(expected);
      expect(compiled.encode(text, { allowSpecial: true, addBos: false })).toEqual(fromJson.encode(text, { allowSpecial: true, addBos: false }));
      expect(compiled.decode(expected)).toBe(fromJson.decode(expected));
    }
  });

  it('agrees on every token string, byte sequence, id lookup and special flag', () => {
    // One expect per id would take tens of seconds over 128k ids: collect the disagreeing ids instead.
    const disagreeing: number[] = [];
    for (let id = 0; id < fromJson.vocabSize; id++) {
      const tokenString = fromJson.tokenString(id);
      const same =
        compiled.tokenString(id) === tokenString &&
        Buffer.from(compiled.tokenBytes(id)).equals(fromJson.tokenBytes(id)) &&
        compiled.tokenId(tokenString) === id &&
        compiled.isSpecial(id) === fromJson.isSpecial(id);
      if (!same) disagreeing.push(id);
    }
    expect(disagreeing).toEqual([]);
    expect(compiled.tokenBytes(220)).toEqual(new Uint8Array([0x20]));
    expect(compiled.tokenBytes(128009)).toEqual(new TextEncoder().encode('<|eot_id|>'));
    expect(compiled.tokenId('not a token at all, surely')).toBeUndefined();
    expect(compiled.tokenId('\u4e00')).toBeUndefined(); // outside the byte-level alphabet
  });

  it('decodes special tokens, skipping them when asked', () => {
    const ids = compiled.encode('<|start_header_id|>user<|end_header_id|>Hi<|eot_id|>', { allowSpecial: true });
    expect(compiled.decode(ids)).toBe('<|begin_of_text|><|start_header_id|>user<|end_header_id|>Hi<|eot_id|>');
    expect(compiled.decode(ids, { skipSpecial: true })).toBe(fromJson.decode(ids, { skipSpecial: true }));
    expect(compiled.decode(ids, { skipSpecial: true })).toBe('userHi');
  });

  it('re-serializes to the same bytes and loads from an unaligned copy', () => {
    expect(Buffer.from(compiled.toCompiled()).equals(Buffer.from(blob))).toBe(true);
    const shifted = new Uint8Array(blob.length + 1);
    shifted.set(blob, 1);
    const unaligned = Tokenizer.fromCompiled(shifted.subarray(1));
    for (const text of CORPUS.slice(0, 20)) expect(unaligned.encode(text)).toEqual(fromJson.encode(text));
  });
});

describe('compiled tokenizer blobs that are damaged', () => {
  const HEADER_BYTES = 36;

  /** A copy of the blob with `edit` applied and, when asked, the checksum made valid again. */
  function edited(edit: (bytes: Buffer) => void, fixChecksum: boolean): Buffer {
    const bytes = Buffer.from(blob);
    edit(bytes);
    if (fixChecksum) bytes.writeUInt32LE(zlib.crc32(bytes.subarray(HEADER_BYTES)), 32);
    return bytes;
  }

  function errorOf(bytes: Uint8Array): CompiledTokenizerError {
    try {
      Tokenizer.fromCompiled(bytes);
    } catch (error) {
      if (error instanceof CompiledTokenizerError) return error;
      throw error;
    }
    throw new Error('expected a CompiledTokenizerError, but the blob loaded');
  }

  it('rejects truncated blobs', () => {
    expect(errorOf(blob.subarray(0, 10)).message).toMatch(/shorter than the 36-byte header/);
    expect(errorOf(blob.subarray(0, blob.length - 1)).message).toMatch(/truncated or corrupt/);
    expect(errorOf(new Uint8Array(0)).message).toMatch(/^compiled tokenizer:/);
  });

  it('rejects another magic or version', () => {
    expect(errorOf(edited((b) => b.write('JSON', 0, 'latin1'), false)).message).toMatch(/bad magic "JSON"/);
    expect(errorOf(edited((b) => b.writeUInt32LE(COMPILED_TOKENIZER_VERSION + 1, 4), false)).message).toMatch(/version 2 is not the supported 1/);
  });

  it('detects a flipped byte anywhere in the data', () => {
    for (const position of [HEADER_BYTES, Math.floor(blob.length / 2), blob.length - 1]) {
      expect(errorOf(edited((b) => (b[position] ^= 0x10), false)).message).toMatch(/checksum mismatch/);
    }
  });

  it('validates offsets, merge ids and meta even when the checksum matches', () => {
    const offsetOf = (id: number): number => HEADER_BYTES + id * 4;
    expect(errorOf(edited((b) => b.writeInt32LE(1 << 30, offsetOf(5)), true)).message).toMatch(/token offsets decrease at id 5/);
    const firstMerge = HEADER_BYTES + (compiled.vocabSize + 1) * 4;
    expect(errorOf(edited((b) => b.writeInt32LE(compiled.vocabSize, firstMerge + 4), true)).message).toMatch(/merge rule 0 names id 128256/);
    const shiftTables = (b: Buffer): void => {
      b.writeUInt32LE(b.readUInt32LE(16) - 3, 16);
      b.writeUInt32LE(b.readUInt32LE(20) + 3, 20);
    };
    expect(errorOf(edited(shiftTables, true)).message).toMatch(/not power-of-two slot counts/);
    const metaStart = blob.length - Buffer.from(blob).readUInt32LE(28);
    expect(errorOf(edited((b) => (b[metaStart] = 0x20), true)).message).toMatch(/meta JSON/);
    const withMeta = (meta: object): Buffer => {
      const metaBytes = Buffer.from(JSON.stringify(meta));
      const bytes = Buffer.concat([blob.subarray(0, metaStart), metaBytes]);
      bytes.writeUInt32LE(metaBytes.length, 28);
      bytes.writeUInt32LE(zlib.crc32(bytes.subarray(HEADER_BYTES)), 32);
      return bytes;
    };
    const meta = { ignoreMerges: true, addedTokens: [], bosId: 1, eosId: 2, addBosByDefault: true };
    expect(Tokenizer.fromCompiled(withMeta(meta)).bosId).toBe(1);
    expect(errorOf(withMeta({ ...meta, bosId: 200000 })).message).toMatch(/bosId \/ eosId/);
    expect(errorOf(withMeta({ ...meta, addedTokens: [{ id: 5, content: 7, special: true }] })).message).toMatch(/malformed added token/);
    expect(errorOf(withMeta({ ...meta, ignoreMerges: 'yes' })).message).toMatch(/ignoreMerges/);
  });

  it('is refused at compile time when two ordinary tokens share an id', () => {
    const vocab = new Map(BYTE_TO_CHAR.map((char, byte) => [char, byte]));
    vocab.set('ab', 97);
    expect(() => new Tokenizer({ vocab, merges: [], ignoreMerges: true, addedTokens: [], bosId: 0, eosId: 1, addBosByDefault: true })).toThrow(/id 97 is given to more than one token/);
  });
});

describe('converted model files', () => {
  const tiny = tinyModel();
  const dir = scratchDir('tokenizer-compiled');
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  function blobOf(file: string, name: string): Buffer {
    const entry = readBitplaneHeader(file).tensors.find((e) => e.name === name);
    if (!entry) throw new Error(`no ${name} in ${file}`);
    return fs.readFileSync(file).subarray(entry.offset, entry.offset + entry.byteLength);
  }

  it.each([['hf'], ['gguf-i2_s']] as const)('carry a compiled tokenizer equal to their tokenizer.json (%s)', async (format) => {
    const output = path.join(dir, `${format}.bitnet`);
    convertModel(tiny.paths[format]!, output);
    const header = readBitplaneHeader(output);
    const json = JSON.parse(blobOf(output, TOKENIZER_BLOB).toString('utf8'));
    const config = JSON.parse(blobOf(output, TOKENIZER_CONFIG_BLOB).toString('utf8'));
    const reference = Tokenizer.fromHfJson(json, { ...config, chat_template: header.chatTemplate });
    const model = await BitNetModel.load(output, { threads: 1 });
    expect(Buffer.from(reference.toCompiled()).equals(blobOf(output, TOKENIZER_COMPILED_BLOB))).toBe(true);
    for (const text of ['The quick brown fox', ' the  theater\n\nis in 2024!', 'café <|eot_id|>']) {
      expect(model.tokenizer.encode(text)).toEqual(reference.encode(text));
    }
    expect(model.tokenizer.chatTemplate).toBe(reference.chatTemplate);
    expect(model.tokenizer.stopTokenIds).toEqual(reference.stopTokenIds);
  });

  it('name the compiled tokenizer when its blob is corrupt', async () => {
    const output = path.join(dir, 'corrupt.bitnet');
    convertModel(tiny.paths.hf!, output);
    const entry = readBitplaneHeader(output).tensors.find((e) => e.name === TOKENIZER_COMPILED_BLOB)!;
    const fd = fs.openSync(output, 'r+');
    fs.writeSync(fd, Buffer.from([0xff]), 0, 1, entry.offset + entry.byteLength - 1);
    fs.closeSync(fd);
    const error = await BitNetModel.load(output).then(
      () => new Error('the corrupt file loaded'),
      (e: unknown) => e,
    );
    expect(modelFileError(() => {
      throw error;
    }).message).toMatch(/tokenizer\.bin.*checksum mismatch/);
  });
});
