import type { CallContext } from './context.js';
import type { CallOptions, ProcedureDefinition } from './stub.js';

/** A call as a server interceptor sees it, after the arguments were decoded. */
export interface IncomingCall {
  readonly ctx: CallContext;
  readonly procedure: ProcedureDefinition;
  readonly args: unknown;
}

/**
 * Server middleware: may inspect or replace the call, run code around `next`, throw an RPC error
 * (RpcAuthError, RpcSystemError, ...) to refuse it, or return a result without calling `next`.
 */
export type ServerInterceptor = (call: IncomingCall, next: (call: IncomingCall) => unknown) => unknown;

/** A call as a client interceptor sees it, before it is encoded. */
export interface OutgoingCall {
  readonly program: number;
  readonly version: number;
  readonly procedure: ProcedureDefinition;
  readonly args: unknown;
  readonly options: CallOptions;
}

export type ClientInterceptor = (
  call: OutgoingCall,
  next: (call: OutgoingCall) => Promise<unknown>,
) => Promise<unknown>;

/** Composes interceptors around a terminal function, outermost first. */
export function compose<C, R>(
  interceptors: readonly ((c: C, next: (c: C) => R) => R)[],
  terminal: (c: C) => R,
): (c: C) => R {
  let fn = terminal;
  for (let i = interceptors.length - 1; i >= 0; i--) {
    const ic = interceptors[i];
    const next = fn;
    fn = (c) => ic(c, next);
  }
  return fn;
}
