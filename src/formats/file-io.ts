/** Positional file I/O that never silently returns short data. */
import * as fs from 'fs';
import { ModelFileError } from './errors';

/** Reads `length` bytes at `position`, failing with a named error on a short read. */
export function readExactly(fd: number, file: string, tensor: string | null, position: number, length: number): Uint8Array {
  const buffer = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, buffer, done, length - done, position + done);
    if (n === 0) throw new ModelFileError(file, tensor, `file ends at byte ${position + done}, expected ${length} bytes from ${position}`);
    done += n;
  }
  return new Uint8Array(buffer.buffer, buffer.byteOffset, length);
}

/** Writes all of `bytes` at the current position (writeSync may write less than asked). */
export function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done);
}

/**
 * Writes a file front to back in blocks of `blockBytes` (default 8 MiB, a multiple of 2 MB). The
 * page cache keeps what one write brought in as folios no larger than that write, and only a file
 * cached in 2 MB folios can be mapped with 2 MB pages (native/model/file_memory.h); written in
 * small pieces, a model file would be re-read once at its first load to regroup it.
 */
export class BlockWriter {
  private readonly block: Buffer;
  private filled = 0;

  /** `sink` gets each block; it must consume it before returning (the buffer is reused). */
  constructor(private readonly sink: (block: Uint8Array) => void, blockBytes = 8 << 20) {
    this.block = Buffer.allocUnsafe(blockBytes);
  }

  write(bytes: Uint8Array): void {
    for (let done = 0; done < bytes.length;) {
      const n = Math.min(bytes.length - done, this.block.length - this.filled);
      this.block.set(bytes.subarray(done, done + n), this.filled);
      this.filled += n;
      done += n;
      if (this.filled === this.block.length) this.flush();
    }
  }

  /** Writes what is buffered; call it before writing elsewhere in the file or closing it. */
  flush(): void {
    if (this.filled > 0) this.sink(this.block.subarray(0, this.filled));
    this.filled = 0;
  }
}

/** Tensor bytes from a writer's producer: one buffer, or chunks written in order. */
export type TensorBytes = Uint8Array | Iterable<Uint8Array>;

/** Writes `bytes` (one buffer or chunks) and returns the number of bytes written. */
export function writeTensorBytes(fd: number, bytes: TensorBytes): number {
  if (bytes instanceof Uint8Array) {
    writeAll(fd, bytes);
    return bytes.length;
  }
  let length = 0;
  for (const chunk of bytes) {
    writeAll(fd, chunk);
    length += chunk.length;
  }
  return length;
}

/**
 * The byte count of the range [start, start + length) of a tensor (length
 * defaults to the rest of it), after checking that it lies inside the tensor.
 */
export function checkedRange(file: string, tensor: { name: string; byteLength: number }, start: number, length?: number): number {
  const count = length ?? tensor.byteLength - start;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 || start + count > tensor.byteLength) {
    throw new ModelFileError(file, tensor.name, `byte range [${start}, ${start + count}) is outside the tensor's ${tensor.byteLength} bytes`);
  }
  return count;
}

/**
 * `length` bytes (default: all) from byte `start` of a tensor located in an
 * open file; errors name the file and the tensor.
 */
export function readTensorBytes(
  fd: number,
  file: string,
  name: string,
  tensor: { name: string; offset: number; byteLength: number } | undefined,
  start = 0,
  length?: number,
): Uint8Array {
  if (!tensor) throw new ModelFileError(file, name, 'tensor not found');
  return readExactly(fd, file, name, tensor.offset + start, checkedRange(file, tensor, start, length));
}
