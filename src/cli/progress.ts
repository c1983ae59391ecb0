/**
 * A one-line progress bar on stderr (bytes with speed and ETA, or a count) that redraws in
 * place on a terminal and prints nothing otherwise, so logs and pipes stay clean.
 */
import type { Writable } from 'stream';

/** Bytes in human units, e.g. "1.21 GiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** Renders progress of one task; call {@link update} as it advances and {@link finish} at the end. */
export class ProgressBar {
  private readonly enabled: boolean;
  private readonly started = Date.now();
  private lastDraw = 0;
  private baseline = 0;

  /**
   * @param unit 'bytes' shows sizes, speed and ETA; 'count' shows n/total.
   */
  constructor(private readonly stream: Writable & { isTTY?: boolean; columns?: number }, private readonly label: string,
              private readonly unit: 'bytes' | 'count') {
    this.enabled = stream.isTTY === true;
  }

  /** Sets the starting amount (bytes kept from an interrupted download) that the speed ignores. */
  resumeFrom(done: number): void {
    this.baseline = done;
  }

  update(done: number, total: number): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.lastDraw < 100 && done < total) return;
    this.lastDraw = now;
    this.stream.write(`\r${this.line(done, total, now)}\x1b[K`);
  }

  finish(done: number, total: number): void {
    if (!this.enabled) return;
    this.stream.write(`\r${this.line(done, total, Date.now())}\x1b[K\n`);
  }

  private line(done: number, total: number, now: number): string {
    const fraction = total > 0 ? Math.min(1, done / total) : 0;
    const width = 24;
    const filled = Math.round(fraction * width);
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}%`;
    if (this.unit === 'count') return `${this.label} ${bar} ${done}/${total}`;
    const seconds = Math.max((now - this.started) / 1000, 1e-3);
    const speed = (done - this.baseline) / seconds;
    const eta = speed > 0 && total > 0 ? (total - done) / speed : Infinity;
    const label = this.label.length > 32 ? `…${this.label.slice(-31)}` : this.label;
    return `${label} ${bar} ${formatBytes(done)}/${formatBytes(total)} ${formatBytes(speed)}/s ETA ${formatDuration(eta)}`;
  }
}
