/**
 * The root of Cairn's error classes. Every error a caller may want to branch on carries a stable
 * `code` string, so callers never match on message text (the undici convention).
 */
export class CairnError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}
