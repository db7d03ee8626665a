/** What the benchmark loop calls, whatever the system behind it. */
export interface EchoEndpoint {
  /** The null call: no arguments, no result (an empty message for the peers). */
  null(): Promise<unknown>;
  /** Sends `payload` and resolves to the bytes echoed back. */
  echo(payload: Buffer): Promise<Uint8Array>;
}
