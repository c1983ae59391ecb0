import * as fs from 'fs';
import * as path from 'path';
import { MAX_SAFETENSORS_HEADER_BYTES, SafetensorsFile, SafetensorsModel, writeSafetensors } from '../src/formats/safetensors';
import { modelFileError, scratchDir, writeFile } from './helpers/model-files';

const dir = scratchDir('safetensors');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A safetensors file with `header` as its JSON (or raw text) and `data` after it. */
function rawSafetensors(name: string, header: unknown, data: Uint8Array, declaredLength?: bigint): string {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(declaredLength ?? BigInt(json.length));
  return writeFile(dir, name, Buffer.concat([prefix, json, data]));
}

const validHeader = {
  a: { dtype: 'BF16', shape: [2, 2], data_offsets: [0, 8] },
  b: { dtype: 'U8', shape: [3], data_offsets: [8, 11] },
};

test('writer output reads back: header, metadata and bytes', () => {
  const file = path.join(dir, 'rt.safetensors');
  const f32 = new Uint8Array(Float32Array.of(1.5, -2).buffer);
  writeSafetensors(
    file,
    [
      { name: 'x.weight', dtype: 'BF16', shape: [1, 3], bytes: () => Uint8Array.of(1, 2, 3, 4, 5, 6) },
      { name: 'y', dtype: 'F32', shape: [2], bytes: () => f32 },
      { name: 'z', dtype: 'I8', shape: [], bytes: () => Uint8Array.of(0xff) },
    ],
    { format: 'pt' },
  );
  expect(fs.readFileSync(file).readBigUInt64LE(0) % 8n).toBe(0n);
  const st = SafetensorsFile.open(file);
  expect(st.metadata).toEqual({ format: 'pt' });
  expect(st.tensors.get('x.weight')).toMatchObject({ dtype: 'BF16', shape: [1, 3], byteLength: 6 });
  expect(Array.from(st.read('x.weight'))).toEqual([1, 2, 3, 4, 5, 6]);
  expect(st.read('y')).toEqual(f32);
  expect(Array.from(st.read('z'))).toEqual([0xff]);
  expect(modelFileError(() => st.read('missing')).message).toMatch(/rt\.safetensors: tensor 'missing': tensor not found/);
  st.close();
});

test('a valid hand-made file opens', () => {
  const st = SafetensorsFile.open(rawSafetensors('ok.safetensors', validHeader, new Uint8Array(11)));
  expect([...st.tensors.keys()]).toEqual(['a', 'b']);
  st.close();
});

test.each([
  ['header length beyond the file', validHeader, new Uint8Array(11), 10_000n, /header length 10000 exceeds the \d+ bytes after it/],
  ['invalid JSON', '{"a": ', new Uint8Array(0), undefined, /not valid UTF-8 JSON/],
  ['JSON that is not an object', '[1,2]', new Uint8Array(0), undefined, /not a JSON object/],
  ['unsupported dtype', { t: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8), undefined, /tensor 't': unsupported dtype 'F64'/],
  ['shape x dtype != byte length', { t: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(12), undefined, /tensor 't': shape \[3\] x F32 needs 12 bytes but data_offsets span 8/],
  ['overflowing shape', { t: { dtype: 'F32', shape: [2 ** 52, 2 ** 52, 16], data_offsets: [0, 0] } }, new Uint8Array(0), undefined, /tensor 't': shape .* needs \d+ bytes/],
  ['negative dim', { t: { dtype: 'U8', shape: [-1], data_offsets: [0, 0] } }, new Uint8Array(0), undefined, /tensor 't': shape \[-1\] is not a list/],
  ['offsets past the end', { t: { dtype: 'U8', shape: [9], data_offsets: [3, 12] } }, new Uint8Array(8), undefined, /tensor 't': data_offsets end 12 is past the end/],
  ['reversed offsets', { t: { dtype: 'U8', shape: [0], data_offsets: [4, 2] } }, new Uint8Array(8), undefined, /end 2 precedes begin 4/],
  ['overlapping tensors', { a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] }, b: { dtype: 'U8', shape: [4], data_offsets: [2, 6] } }, new Uint8Array(8), undefined, /tensor 'b': bytes overlap tensor 'a'/],
  ['bad metadata', { __metadata__: { n: 1 } }, new Uint8Array(0), undefined, /__metadata__ value 'n' is not a string/],
])('rejects %s with an error naming file and problem', (label, header, data, declared, pattern) => {
  const file = rawSafetensors(`bad-${label.replace(/\W+/g, '-')}.safetensors`, header, data, declared);
  const error = modelFileError(() => SafetensorsFile.open(file));
  expect(error.file).toBe(file);
  expect(error.message).toMatch(pattern);
});

test('a header longer than the sane maximum is rejected before it is read', () => {
  const file = path.join(dir, 'huge.safetensors');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(MAX_SAFETENSORS_HEADER_BYTES + 1));
  fs.writeFileSync(file, prefix);
  fs.truncateSync(file, MAX_SAFETENSORS_HEADER_BYTES + 64); // sparse: costs no disk
  expect(modelFileError(() => SafetensorsFile.open(file)).message).toMatch(/exceeds the 104857600-byte limit/);
});

test('every truncation of a valid file is a clean error', () => {
  const bytes = fs.readFileSync(rawSafetensors('whole.safetensors', validHeader, new Uint8Array(11)));
  for (let length = 0; length < bytes.length; length++) {
    const file = writeFile(dir, 'cut.safetensors', bytes.subarray(0, length));
    expect(modelFileError(() => SafetensorsFile.open(file)).file).toBe(file);
  }
});

describe('sharded models', () => {
  function shardedFolder(name: string, weightMap: Record<string, string>): string {
    const folder = path.join(dir, name);
    fs.mkdirSync(folder);
    writeSafetensors(path.join(folder, 'model-00001-of-00002.safetensors'), [{ name: 'a', dtype: 'U8', shape: [2], bytes: () => Uint8Array.of(1, 2) }]);
    writeSafetensors(path.join(folder, 'model-00002-of-00002.safetensors'), [{ name: 'b', dtype: 'U8', shape: [1], bytes: () => Uint8Array.of(3) }]);
    fs.writeFileSync(path.join(folder, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    return folder;
  }

  test('tensors are read from the shard the index names', () => {
    const model = SafetensorsModel.open(shardedFolder('sharded-ok', { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' }));
    expect(Array.from(model.read('a'))).toEqual([1, 2]);
    expect(Array.from(model.read('b'))).toEqual([3]);
    model.close();
  });

  test('an index pointing outside the folder is rejected', () => {
    const folder = shardedFolder('sharded-escape', { a: '../model-00001-of-00002.safetensors' });
    expect(modelFileError(() => SafetensorsModel.open(folder)).message).toMatch(/tensor 'a': shard '\.\.\/model-00001-of-00002\.safetensors' is not a file name/);
  });

  test('a tensor listed in the index but absent from its shard is named', () => {
    const folder = shardedFolder('sharded-missing', { a: 'model-00001-of-00002.safetensors', b: 'model-00001-of-00002.safetensors' });
    expect(modelFileError(() => SafetensorsModel.open(folder)).message).toMatch(/model-00001-of-00002\.safetensors: tensor 'b': listed in model\.safetensors\.index\.json but missing/);
  });

  test('an empty folder says which files it looked for', () => {
    const folder = path.join(dir, 'empty');
    fs.mkdirSync(folder);
    expect(modelFileError(() => SafetensorsModel.open(folder)).message).toMatch(/neither model\.safetensors nor model\.safetensors\.index\.json/);
  });
});
