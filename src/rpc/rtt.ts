/**
 * Retransmission timeout estimation in the manner of Jacobson and Karels (SIGCOMM '88, and
 * RFC 6298): a smoothed RTT and its mean deviation, RTO = SRTT + 4·RTTVAR, clamped, doubled on
 * each retransmission of the same call. Samples from retransmitted calls are discarded (Karn's
 * algorithm), since their reply cannot be matched to one transmission. Pure: no clock inside.
 */
export class RttEstimator {
  private srtt = 0;
  private rttvar = 0;
  private sampled = false;

  constructor(
    readonly initialRtoMs = 500,
    readonly minRtoMs = 20,
    readonly maxRtoMs = 10_000,
  ) {}

  sample(rttMs: number): void {
    if (!this.sampled) {
      this.srtt = rttMs;
      this.rttvar = rttMs / 2;
      this.sampled = true;
      return;
    }
    this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - rttMs);
    this.srtt = 0.875 * this.srtt + 0.125 * rttMs;
  }

  /** The timeout for a call's `attempt`-th transmission (0 for the first). */
  rto(attempt = 0): number {
    const base = this.sampled ? this.srtt + Math.max(4 * this.rttvar, 1) : this.initialRtoMs;
    const clamped = Math.min(Math.max(base, this.minRtoMs), this.maxRtoMs);
    return Math.min(clamped * 2 ** attempt, this.maxRtoMs);
  }

  get smoothedRtt(): number | undefined {
    return this.sampled ? this.srtt : undefined;
  }
}
