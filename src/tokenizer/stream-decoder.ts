/** What a {@link StreamDecoder} needs from a tokenizer. */
export interface TokenByteSource {
  tokenBytes(id: number): Uint8Array;
  isSpecial(id: number): boolean;
}

/** Options for {@link StreamDecoder}. */
export interface StreamDecoderOptions {
  /** Leave special tokens out of the text. Default false. */
  skipSpecial?: boolean;
}

/**
 * Turns token ids, given one at a time, into text. A character whose UTF-8 bytes span several
 * tokens is held back until complete, so no broken character is ever emitted; the
 * concatenation of all outputs plus {@link flush} equals decoding all ids at once.
 */
export class StreamDecoder {
  private readonly utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  private readonly skipSpecial: boolean;

  constructor(
    private readonly tokenizer: TokenByteSource,
    options: StreamDecoderOptions = {},
  ) {
    this.skipSpecial = options.skipSpecial ?? false;
  }

  /** Adds one token; returns the text completed by it (possibly empty). */
  push(id: number): string {
    if (this.skipSpecial && this.tokenizer.isSpecial(id)) return '';
    return this.utf8.decode(this.tokenizer.tokenBytes(id), { stream: true });
  }

  /** Ends the stream: returns held-back bytes (an incomplete character becomes U+FFFD) and resets. */
  flush(): string {
    return this.utf8.decode();
  }
}
