/**
 * The node's clocks: a wall clock (for timestamps people read: mtime, ctime) and a monotonic clock
 * (for timeouts and the membership protocol's timing), both skewable for fault tests. A node
 * started with CAIRN_CLOCK_SKEW runs them off from real time, as a machine with a bad clock does:
 *
 *   CAIRN_CLOCK_SKEW='offset=+30000,rate=1.05'
 *
 * `offset` (ms, signed) shifts the wall clock; `rate` is how fast both clocks run relative to real
 * time (1.05: 5 % fast, so a timer of d ms on this node fires after d / 1.05 real ms). Either may
 * be left out (offset 0, rate 1). A value that does not parse refuses to start the node
 * (ClockSkewError, code CLOCK_SKEW), so a typo cannot make a fault test that injects nothing.
 */
import { CairnError } from './errors.js';

export interface ClockSkew {
  /** Added to the wall clock, in ms. */
  readonly offsetMs: number;
  /** Speed of both clocks relative to real time; 1 = exact. */
  readonly rate: number;
}

export const NO_SKEW: ClockSkew = Object.freeze({ offsetMs: 0, rate: 1 });

/** Rates beyond these are not a skewed clock but a broken one, and would stall or spin timers. */
export const MIN_RATE = 0.1;
export const MAX_RATE = 10;
/** A century: further than any real clock is wrong, and still exact in a double. */
export const MAX_OFFSET_MS = 100 * 365.25 * 86_400_000;

export class ClockSkewError extends CairnError {
  constructor(message: string) {
    super('CLOCK_SKEW', message);
  }
}

/** The clocks a node reads. */
export interface NodeClock {
  readonly skew: ClockSkew;
  /** Milliseconds since the epoch, as this node believes (Date.now, skewed). */
  wallMs(): number;
  /** Milliseconds on a monotonic scale (performance.now, running at `skew.rate`). */
  monoMs(): number;
  /** Real milliseconds until a span of `ms` has passed on this node's clocks. */
  realDelay(ms: number): number;
}

/**
 * Parses a CAIRN_CLOCK_SKEW value ('offset=+30000,rate=1.05'; either part optional). Empty or
 * undefined: no skew. Throws ClockSkewError with what was wrong.
 */
export function parseClockSkew(text: string | undefined): ClockSkew {
  if (text === undefined || text.trim() === '') return NO_SKEW;
  let offsetMs: number | undefined;
  let rate: number | undefined;
  for (const part of text.split(',')) {
    const m = /^\s*([a-z]+)\s*=\s*(\S+)\s*$/.exec(part);
    if (!m) throw new ClockSkewError(`CAIRN_CLOCK_SKEW: '${part.trim()}' is not KEY=VALUE (in '${text}')`);
    const [, key, raw] = m;
    // Number() alone would take '', '0x10' and 'Infinity'; a skew is a plain decimal.
    if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(raw))
      throw new ClockSkewError(`CAIRN_CLOCK_SKEW: ${key} must be a decimal number, not '${raw}'`);
    const v = Number(raw);
    if (key === 'offset') {
      if (offsetMs !== undefined) throw new ClockSkewError('CAIRN_CLOCK_SKEW: offset given twice');
      if (Math.abs(v) > MAX_OFFSET_MS)
        throw new ClockSkewError(`CAIRN_CLOCK_SKEW: offset ${raw} ms is beyond ±${MAX_OFFSET_MS} ms`);
      offsetMs = v;
    } else if (key === 'rate') {
      if (rate !== undefined) throw new ClockSkewError('CAIRN_CLOCK_SKEW: rate given twice');
      if (!(v >= MIN_RATE && v <= MAX_RATE))
        throw new ClockSkewError(
          `CAIRN_CLOCK_SKEW: rate must be from ${MIN_RATE} to ${MAX_RATE}, not ${raw}`,
        );
      rate = v;
    } else {
      throw new ClockSkewError(`CAIRN_CLOCK_SKEW: unknown key '${key}' (known: offset, rate)`);
    }
  }
  return { offsetMs: offsetMs ?? 0, rate: rate ?? 1 };
}

/** The CAIRN_CLOCK_SKEW form of a skew (what parseClockSkew reads back). */
export function formatClockSkew(s: ClockSkew): string {
  return `offset=${s.offsetMs >= 0 ? '+' : ''}${s.offsetMs},rate=${s.rate}`;
}

export interface BaseClocks {
  wallMs(): number;
  monoMs(): number;
}

const REAL: BaseClocks = { wallMs: () => Date.now(), monoMs: () => performance.now() };

/**
 * Clocks running at `skew.rate` from the moment they are made, the wall clock also shifted by
 * `skew.offsetMs`. Without skew they are the base clocks themselves.
 */
export function skewedClock(skew: ClockSkew = NO_SKEW, base: BaseClocks = REAL): NodeClock {
  const { offsetMs, rate } = skew;
  if (offsetMs === 0 && rate === 1) {
    return { skew, wallMs: base.wallMs, monoMs: base.monoMs, realDelay: (ms) => ms };
  }
  const wall0 = base.wallMs();
  const mono0 = base.monoMs();
  return {
    skew,
    // Anchored at the base clock's own reading, so a step of the real wall clock (NTP) shows
    // through as it would on a machine whose oscillator runs fast or slow.
    wallMs: () => {
      const w = base.wallMs();
      return w + offsetMs + (w - wall0) * (rate - 1);
    },
    monoMs: rate === 1 ? base.monoMs : () => mono0 + (base.monoMs() - mono0) * rate,
    realDelay: (ms) => ms / rate,
  };
}

/** The clocks of this process, as CAIRN_CLOCK_SKEW asks. Throws ClockSkewError on a bad value. */
export function nodeClock(env: NodeJS.ProcessEnv = process.env): NodeClock {
  return skewedClock(parseClockSkew(env.CAIRN_CLOCK_SKEW));
}

/** Real, unskewed clocks. */
export const systemClock: NodeClock = skewedClock(NO_SKEW);
