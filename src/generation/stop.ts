/**
 * Finds stop strings in streamed text. Text that might be the start of a stop
 * string is held back until it is known not to be one, so callers never
 * stream the beginning of a stop string. Input chunks are whole characters
 * (the stream decoder never splits UTF-8), and a match always starts at a
 * character boundary, so the emitted text never ends in half a character.
 */
export class StopStringMatcher {
  private pending = '';
  private readonly longest: number;

  constructor(private readonly stops: readonly string[]) {
    for (const s of stops) {
      if (typeof s !== 'string' || s.length === 0) throw new RangeError('stop strings must be non-empty strings');
    }
    this.longest = stops.reduce((m, s) => Math.max(m, s.length), 0);
  }

  /**
   * Adds generated text. Returns the text now safe to emit and whether a stop
   * string was found (text from the stop string on is dropped).
   */
  push(text: string): { text: string; stopped: boolean } {
    this.pending += text;
    let first = -1;
    for (const s of this.stops) {
      const at = this.pending.indexOf(s);
      if (at !== -1 && (first === -1 || at < first)) first = at;
    }
    if (first !== -1) {
      const out = this.pending.slice(0, first);
      this.pending = '';
      return { text: out, stopped: true };
    }
    // Hold back the longest suffix that is a proper prefix of some stop string.
    let hold = 0;
    for (let len = Math.min(this.longest - 1, this.pending.length); len > 0 && hold === 0; len--) {
      const tail = this.pending.slice(this.pending.length - len);
      if (this.stops.some((s) => s.startsWith(tail))) hold = len;
    }
    const out = this.pending.slice(0, this.pending.length - hold);
    this.pending = this.pending.slice(this.pending.length - hold);
    return { text: out, stopped: false };
  }

  /** Text held back at the end of generation (it did not become a stop string). */
  flush(): string {
    const out = this.pending;
    this.pending = '';
    return out;
  }
}
