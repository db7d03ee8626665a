import { CairnError } from '../errors.js';

/**
 * A decode or encode failure. `path` names the field where it happened (for example
 * `args.where.dir.data`), built as the error unwinds through generated codecs so that the
 * successful path pays nothing for it.
 */
export class XdrError extends CairnError {
  private readonly segments: string[] = [];
  readonly detail: string;
  constructor(code: XdrErrorCode, detail: string) {
    super(code, detail);
    this.detail = detail;
  }
  get path(): string {
    let out = '';
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const s = this.segments[i];
      out += s.startsWith('[') || out === '' ? s : `.${s}`;
    }
    return out;
  }
  /** Prepends one path segment (a field name or `[index]`) as the error leaves a codec. */
  at(segment: string): this {
    this.segments.push(segment);
    this.message = `${this.path}: ${this.detail}`;
    return this;
  }
}

export type XdrErrorCode =
  | 'XDR_SHORT_BUFFER'
  | 'XDR_LENGTH_EXCEEDED'
  | 'XDR_BAD_BOOL'
  | 'XDR_BAD_ENUM'
  | 'XDR_BAD_DISCRIMINANT'
  | 'XDR_BAD_PADDING'
  | 'XDR_BAD_VALUE'
  | 'XDR_TRAILING_BYTES';

/**
 * Called by generated codecs when an error passes through a field: XDR errors gain the segment,
 * anything else (a bug, a RangeError from the runtime) is wrapped so the path is never lost.
 */
export function xdrErrorAt(e: unknown, segment: string): XdrError {
  if (e instanceof XdrError) return e.at(segment);
  const wrapped = new XdrError('XDR_BAD_VALUE', e instanceof Error ? e.message : String(e));
  return wrapped.at(segment);
}
