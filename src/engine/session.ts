/**
 * A conversation or completion stream over one KV cache. Tokens already in
 * the cache are reused whenever the next prompt starts with them (a chat's
 * earlier turns, a shared system prompt), so only new tokens are evaluated.
 */
import type { NativeModel, NativeSession } from '../native';
import { native } from '../native';
import type { Runtime } from '../kernels';
import type { Tokenizer } from '../tokenizer';
import { StreamDecoder } from '../tokenizer';
import { renderChat } from '../chat';
import type { ChatMessage, RenderChatOptions } from '../chat';
import { resolveSampling, Rng, sampleToken } from '../generation/sampler';
import type { SamplingOptions } from '../generation/sampler';
import { StopStringMatcher } from '../generation/stop';

/** What a session needs from a loaded model. */
export interface SessionHost {
  readonly tokenizer: Tokenizer;
  /** Tokens that end generation (unless stopAtEos is false). */
  readonly stopTokenIds: readonly number[];
  readonly nativeModel: NativeModel;
  readonly runtime: Runtime;
  readonly vocab: number;
  /** Chat format used by {@link Session.chat}. */
  readonly chatFormat: RenderChatOptions['format'];
}

/** Options of one generation. Sampling options are documented on {@link SamplingOptions}. */
export interface GenerateOptions extends SamplingOptions {
  /** Most tokens to generate. Default 256. */
  maxTokens?: number;
  /** Strings that end generation; the text stops before them. Default none. */
  stop?: readonly string[];
  /** Cancels generation within one token; the stream then ends with stopReason "aborted". */
  signal?: AbortSignal;
  /** End at the model's end-of-sequence / end-of-turn tokens. Default true. */
  stopAtEos?: boolean;
}

/** One streamed piece of generated text. */
export interface GenerationChunk {
  /** New text; may be empty while a multi-byte character or a possible stop string is incomplete. */
  text: string;
  /** The token sampled at this step. */
  token: number;
}

/** Why generation ended. */
export type StopReason = 'eos' | 'stop-string' | 'max-tokens' | 'context-full' | 'aborted';

export interface GenerationTimings {
  /** Prompt tokens evaluated (excludes tokens reused from the cache). */
  promptTokens: number;
  /** Prompt tokens found already in the cache. */
  reusedTokens: number;
  promptMs: number;
  generatedTokens: number;
  generateMs: number;
  /** Time spent awaiting forward passes while generating (the rest is sampling, decoding, JS). */
  forwardMs: number;
  /**
   * Time the forward passes took on their native worker thread while generating: generateMs - nativeMs
   * is the overhead outside the native code (sampling, detokenizing, N-API and event-loop hops).
   */
  nativeMs: number;
  promptTokensPerSecond: number;
  tokensPerSecond: number;
}

/** The share of generation time spent outside the native forward passes, or undefined before any pass. */
export function outsideNativeShare(t: GenerationTimings): number | undefined {
  return t.nativeMs > 0 ? 1 - t.nativeMs / t.generateMs : undefined;
}

export interface GenerationResult {
  text: string;
  tokens: number[];
  stopReason: StopReason;
  timings: GenerationTimings;
  /** The seed used (given or drawn), to reproduce the run. */
  seed: number;
}

/** A generation as an async generator; it ends early ("aborted") once `cancelled()` is true. */
type GenerationRun = (cancelled: () => boolean) => AsyncGenerator<GenerationChunk, GenerationResult>;

/**
 * An async iterator of chunks plus the final result. Either iterate it (once)
 * and then read `result`, or await `result` directly, which runs the
 * generation to its end. Leaving the loop early (break) stops generation
 * within one token; `result` then holds what was generated.
 */
export class GenerationStream implements AsyncIterable<GenerationChunk> {
  private readonly run: GenerationRun;
  private readonly settled: Promise<GenerationResult>;
  private settle!: { resolve: (r: GenerationResult) => void; reject: (e: unknown) => void };
  private started = false;
  private cancelled = false;

  constructor(run: GenerationRun) {
    this.run = run;
    this.settled = new Promise<GenerationResult>((resolve, reject) => (this.settle = { resolve, reject }));
    // The error also reaches the iterating caller; never report it as unhandled here.
    this.settled.catch(() => undefined);
  }

  /** The whole generation; settles when it ends. */
  get result(): Promise<GenerationResult> {
    if (!this.started) void this.drain().catch(() => undefined);
    return this.settled;
  }

  private async drain(): Promise<void> {
    for await (const _ of this) {
      // consumed only for the side effect of running to the end
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<GenerationChunk> {
    if (this.started) throw new Error('a GenerationStream can be iterated only once');
    this.started = true;
    const inner = this.run(() => this.cancelled);
    let done = false;
    try {
      for (;;) {
        const step = await inner.next();
        if (step.done) {
          done = true;
          this.settle.resolve(step.value);
          return;
        }
        yield step.value;
      }
    } catch (err) {
      done = true;
      this.settle.reject(err);
      throw err;
    } finally {
      if (!done) {
        // The consumer left the loop: let the generation notice and end at the next token.
        this.cancelled = true;
        try {
          let step = await inner.next();
          while (!step.done) step = await inner.next();
          this.settle.resolve(step.value);
        } catch (err) {
          this.settle.reject(err);
        }
      }
    }
  }
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/**
 * One sequence over the model, with its own KV cache. Generations on one
 * session run one at a time; separate sessions of one model run concurrently.
 */
export class Session {
  private readonly host: SessionHost;
  private readonly nativeSession: NativeSession;
  /** Tokens whose keys and values are in the cache, in order. */
  private cached: number[] = [];
  private history: ChatMessage[] = [];
  /**
   * The conversation's tokens as the cache holds them: the rendered turns with
   * each answer as the sampled token ids (plus end-of-turn), not as its text
   * re-encoded, which may tokenize differently and would defeat the cache.
   */
  private historyIds: number[] = [];
  private busy = false;

  /** @param contextSize KV cache capacity in tokens. */
  constructor(host: SessionHost, contextSize: number) {
    this.host = host;
    this.nativeSession = new native.NativeSession(host.nativeModel, contextSize);
  }

  /** KV cache capacity in tokens. */
  get contextSize(): number {
    return this.nativeSession.context;
  }

  /**
   * Bytes of this session's KV cache when every position is filled. The OS
   * commits its pages as tokens fill them, so a session uses memory for the
   * positions it has held, not for its whole contextSize.
   */
  get kvCacheBytes(): number {
    return this.nativeSession.kvCacheBytes;
  }

  /** The chat so far (system, user and assistant messages). */
  get messages(): readonly ChatMessage[] {
    return this.history;
  }

  /** Forgets the conversation and the cached tokens, and gives the KV cache's memory back to the OS. */
  reset(): void {
    this.assertIdle();
    this.history = [];
    this.historyIds = [];
    this.cached = [];
    this.nativeSession.truncate(0);
  }

  /**
   * Continues `prompt` (text, encoded with a BOS, or token ids used as given).
   * Tokens shared with what the cache holds are not evaluated again.
   */
  generate(prompt: string | readonly number[], options: GenerateOptions = {}): GenerationStream {
    const ids = typeof prompt === 'string' ? this.host.tokenizer.encode(prompt) : [...prompt];
    return new GenerationStream((cancelled) => this.run(ids, options, cancelled, undefined));
  }

  /**
   * Sends one user message and streams the assistant's answer, which joins the
   * history when generation ends. The chat template (or the 2B4T format) renders
   * the whole conversation; the cache keeps the earlier turns.
   */
  chat(userMessage: string, options: GenerateOptions & { system?: string } = {}): GenerationStream {
    if (options.system !== undefined) {
      this.history = [{ role: 'system', content: options.system }, ...this.history.filter((m) => m.role !== 'system')];
      this.historyIds = [];
    }
    const messages: ChatMessage[] = [...this.history, { role: 'user', content: userMessage }];
    const format = { format: this.host.chatFormat };
    const full = renderChat(this.host.tokenizer, messages, format).ids;
    let ids = full;
    if (this.historyIds.length > 0) {
      // Rendering only appends for a new turn: keep the cached turns, add the new tail.
      const before = renderChat(this.host.tokenizer, this.history, { ...format, addGenerationPrompt: false }).ids;
      if (before.every((id, i) => full[i] === id)) ids = [...this.historyIds, ...full.slice(before.length)];
    }
    const endOfTurn = this.host.tokenizer.eotId ?? this.host.tokenizer.eosId;
    return new GenerationStream((cancelled) => this.run(ids, options, cancelled, (answer, tokens) => {
      this.history = [...messages, { role: 'assistant', content: answer }];
      this.historyIds = [...ids, ...tokens, endOfTurn];
    }));
  }

  /**
   * Appends `tokens` to the cache and returns their logits: the last token's
   * (vocab floats) or, with allLogits, every token's ([tokens.length][vocab]),
   * e.g. for perplexity. Throws RangeError when the context would overflow.
   */
  async evaluate(tokens: readonly number[], options: { allLogits?: boolean } = {}): Promise<Float32Array> {
    this.assertIdle();
    const logits = new Float32Array((options.allLogits ? tokens.length : 1) * this.host.vocab);
    this.busy = true;
    try {
      await this.nativeSession.forward(this.host.runtime.native, Int32Array.from(tokens), logits, options.allLogits);
      this.cached.push(...tokens);
    } finally {
      this.busy = false;
    }
    return logits;
  }

  /** Tokens currently held in the KV cache. */
  get position(): number {
    return this.nativeSession.position;
  }

  private assertIdle(): void {
    if (this.busy) throw new Error('this session is already generating; await the current generation or use another session');
  }

  /** Returns the native forward time in ms. */
  private async forward(tokens: number[], logits: Float32Array): Promise<number> {
    const nativeMs = await this.nativeSession.forward(this.host.runtime.native, Int32Array.from(tokens), logits);
    this.cached.push(...tokens);
    return nativeMs;
  }

  private async *run(
    promptIds: number[],
    options: GenerateOptions,
    cancelled: () => boolean,
    onDone: ((text: string, tokens: readonly number[]) => void) | undefined,
  ): AsyncGenerator<GenerationChunk, GenerationResult> {
    this.assertIdle();
    const sampling = resolveSampling(options);
    const maxTokens = options.maxTokens ?? 256;
    if (!Number.isInteger(maxTokens) || maxTokens < 0) throw new RangeError(`maxTokens must be a non-negative integer, got ${maxTokens}`);
    if (promptIds.length === 0) throw new RangeError('the prompt is empty');
    if (promptIds.length > this.contextSize) {
      throw new RangeError(`the prompt has ${promptIds.length} tokens but the context holds ${this.contextSize}; ` +
        'use a larger context or a shorter prompt');
    }
    const stopIds = new Set(options.stopAtEos === false ? [] : this.host.stopTokenIds);
    this.busy = true;
    try {
      // Keep the cached prefix, but always evaluate at least the prompt's last token for its logits.
      const reused = Math.min(commonPrefix(this.cached, promptIds), promptIds.length - 1);
      this.nativeSession.truncate(reused);
      this.cached.length = reused;
      const logits = new Float32Array(this.host.vocab);
      const t0 = performance.now();
      await this.forward(promptIds.slice(reused), logits);
      const t1 = performance.now();

      const rng = new Rng(sampling.seed);
      const topKOut = new Int32Array(Math.min(sampling.topK, this.host.vocab));
      const nativeTopK = (values: Float32Array, k: number) => this.host.runtime.topK(values, k, topKOut);
      const decoder = new StreamDecoder(this.host.tokenizer, { skipSpecial: true });
      const matcher = new StopStringMatcher(options.stop ?? []);
      const generated: number[] = [];
      let text = '';
      let forwardMs = 0;
      let nativeMs = 0;
      let stopReason: StopReason = 'max-tokens';
      while (generated.length < maxTokens) {
        if (options.signal?.aborted || cancelled()) {
          stopReason = 'aborted';
          break;
        }
        const token = sampleToken(logits, this.cached, sampling, rng, nativeTopK);
        if (stopIds.has(token)) {
          stopReason = 'eos';
          break;
        }
        generated.push(token);
        const piece = matcher.push(decoder.push(token));
        text += piece.text;
        yield { text: piece.text, token };
        if (piece.stopped) {
          stopReason = 'stop-string';
          break;
        }
        if (generated.length === maxTokens) break;
        if (this.nativeSession.position >= this.contextSize) {
          stopReason = 'context-full';
          break;
        }
        const f0 = performance.now();
        nativeMs += await this.forward([token], logits);
        forwardMs += performance.now() - f0;
      }
      if (stopReason !== 'stop-string') {
        const tail = matcher.push(decoder.flush()).text + matcher.flush();
        if (tail) {
          text += tail;
          yield { text: tail, token: generated[generated.length - 1] };
        }
      }
      const t2 = performance.now();
      onDone?.(text, generated);
      const promptTokens = promptIds.length - reused;
      return {
        text,
        tokens: generated,
        stopReason,
        seed: sampling.seed,
        timings: {
          promptTokens,
          reusedTokens: reused,
          promptMs: t1 - t0,
          generatedTokens: generated.length,
          generateMs: t2 - t1,
          forwardMs,
          nativeMs,
          promptTokensPerSecond: promptTokens / ((t1 - t0) / 1000),
          tokensPerSecond: generated.length / ((t2 - t1) / 1000),
        },
      };
    } finally {
      this.busy = false;
    }
  }
}
