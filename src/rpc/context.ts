/** What a server handler learns about the call it is serving. */

export interface AuthSysCredential {
  readonly flavor: 1;
  readonly stamp: number;
  readonly machinename: string;
  readonly uid: number;
  readonly gid: number;
  readonly gids: readonly number[];
}

export interface AuthNoneCredential {
  readonly flavor: 0;
}

/** A credential of a flavor the runtime does not parse; the body is handed over as is. */
export interface OtherCredential {
  readonly flavor: number;
  readonly body: Uint8Array;
}

export type Credential = AuthNoneCredential | AuthSysCredential | OtherCredential;

export interface CallContext {
  readonly xid: number;
  readonly program: number;
  readonly version: number;
  readonly procedure: number;
  readonly credential: Credential;
  readonly transport: 'tcp' | 'udp';
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localPort: number;
  /** Aborted when the connection closes or the server stops; long handlers should watch it. */
  readonly signal: AbortSignal;
  /**
   * The reply will refer to memory lent to the handler: `release` is called once the transport
   * is done with the reply (not at all if the write fails: the memory then goes to the garbage
   * collector). Absent where no transport tells when its reply is written.
   */
  readonly lend?: (release: () => void) => void;
}
