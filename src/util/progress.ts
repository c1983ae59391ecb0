/**
 * A one-line progress bar on stderr. It draws only when stderr is a terminal, so logs, pipes
 * and test runs stay clean; elsewhere every call is a no-op.
 */

/** Options of {@link ProgressBar}. */
export interface ProgressBarOptions {
  /** Where to draw. Default process.stderr. */
  stream?: NodeJS.WriteStream;
  /** Bar width in characters. Default 30. */
  width?: number;
  /** Least milliseconds between redraws. Default 100. */
  intervalMs?: number;
}

/** Draws `label [#####-----] 42% detail` and redraws it in place as work advances. */
export class ProgressBar {
  private readonly stream: NodeJS.WriteStream;
  private readonly width: number;
  private readonly intervalMs: number;
  private readonly enabled: boolean;
  private lastDraw = 0;
  private drawn = false;

  constructor(private readonly label: string, options: ProgressBarOptions = {}) {
    this.stream = options.stream ?? process.stderr;
    this.width = options.width ?? 30;
    this.intervalMs = options.intervalMs ?? 100;
    this.enabled = this.stream.isTTY === true;
  }

  /** Shows `done` of `total` units, with an optional detail (e.g. the current tensor). */
  update(done: number, total: number, detail = ''): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (done < total && now - this.lastDraw < this.intervalMs) return;
    this.lastDraw = now;
    const fraction = total > 0 ? Math.min(1, Math.max(0, done / total)) : 1;
    const filled = Math.round(fraction * this.width);
    const bar = '#'.repeat(filled) + '-'.repeat(this.width - filled);
    const line = `${this.label} [${bar}] ${String(Math.floor(fraction * 100)).padStart(3)}% ${detail}`;
    const columns = this.stream.columns ?? 80;
    this.stream.write(`\r${line.slice(0, columns - 1).padEnd(columns - 1)}`);
    this.drawn = true;
  }

  /** Ends the line so later output starts on a fresh one. */
  finish(): void {
    if (this.enabled && this.drawn) this.stream.write('\n');
    this.drawn = false;
  }
}
