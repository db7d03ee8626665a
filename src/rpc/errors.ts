import { CairnError } from '../errors.js';

/**
 * RPC failures. A server handler may throw the accept/auth errors below to choose the reply
 * status; a client receives the same classes when the server answers that way, so code on both
 * sides branches on one vocabulary.
 */
export class RpcError extends CairnError {}

export class RpcProgramUnavailableError extends RpcError {
  constructor(readonly program: number) {
    super('RPC_PROG_UNAVAIL', `program ${program} is not available`);
  }
}

export class RpcProgramMismatchError extends RpcError {
  constructor(
    readonly program: number,
    readonly low: number,
    readonly high: number,
  ) {
    super('RPC_PROG_MISMATCH', `program ${program} supports versions ${low} to ${high}`);
  }
}

export class RpcProcedureUnavailableError extends RpcError {
  constructor(readonly procedure: number) {
    super('RPC_PROC_UNAVAIL', `procedure ${procedure} is not available`);
  }
}

export class RpcGarbageArgsError extends RpcError {
  constructor(detail = 'the server could not decode the arguments', options?: { cause?: unknown }) {
    super('RPC_GARBAGE_ARGS', detail, options);
  }
}

export class RpcSystemError extends RpcError {
  constructor(detail = 'the server failed to execute the call', options?: { cause?: unknown }) {
    super('RPC_SYSTEM_ERR', detail, options);
  }
}

export class RpcVersionMismatchError extends RpcError {
  constructor(
    readonly low: number,
    readonly high: number,
  ) {
    super('RPC_MISMATCH', `the server speaks RPC versions ${low} to ${high}`);
  }
}

/** AUTH_ERROR; `stat` is an auth_stat value (AUTH_BADCRED = 1, AUTH_TOOWEAK = 5, ...). */
export class RpcAuthError extends RpcError {
  constructor(
    readonly stat: number,
    detail = `authentication failed (auth_stat ${stat})`,
  ) {
    super('RPC_AUTH_ERROR', detail);
  }
}

export class RpcTimeoutError extends RpcError {
  constructor(readonly timeoutMs: number) {
    super('RPC_TIMEOUT', `no reply within ${timeoutMs} ms`);
  }
}

export class RpcAbortedError extends RpcError {
  constructor(options?: { cause?: unknown }) {
    super('RPC_ABORTED', 'the call was aborted', options);
  }
}

export class RpcClosedError extends RpcError {
  constructor(detail = 'the client is closed') {
    super('RPC_CLOSED', detail);
  }
}

export class RpcConnectionError extends RpcError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super('RPC_CONNECTION', detail, options);
  }
}

/** A reply that does not decode, or a record that breaks the framing rules. */
export class RpcProtocolError extends RpcError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super('RPC_PROTOCOL', detail, options);
  }
}

export class RpcRecordTooLargeError extends RpcError {
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super('RPC_RECORD_TOO_LARGE', `record of ${size} bytes exceeds the limit of ${limit}`);
  }
}
