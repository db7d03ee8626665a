/**
 * Universal addresses (RFC 1833 section 2): the transport-independent text form of an IP
 * address and port that rpcbind stores and returns. For IPv4 it is "h1.h2.h3.h4.p1.p2", the
 * dotted host followed by the port's high and low byte; for IPv6 the textual address followed
 * by ".p1.p2". Also the translation to and from the socket-address layout of UADDR2TADDR and
 * TADDR2UADDR.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { endianness } from 'node:os';

/** The netids rpcbind knows how to interpret; others are stored as opaque strings. */
export type InetNetid = 'tcp' | 'udp' | 'tcp6' | 'udp6';

export interface InetAddress {
  host: string;
  port: number;
  family: 4 | 6;
}

export function isInetNetid(netid: string): netid is InetNetid {
  return netid === 'tcp' || netid === 'udp' || netid === 'tcp6' || netid === 'udp6';
}

/** The netid of a transport and address family: ('tcp', 6) is "tcp6". */
export function netidFor(transport: 'tcp' | 'udp', family: 4 | 6 = 4): InetNetid {
  return family === 6 ? `${transport}6` : transport;
}

/** The transport part of an inet netid: "udp6" → "udp". */
export function netidTransport(netid: InetNetid): 'tcp' | 'udp' {
  return netid.startsWith('tcp') ? 'tcp' : 'udp';
}

export function netidFamily(netid: InetNetid): 4 | 6 {
  return netid.endsWith('6') ? 6 : 4;
}

/** Formats host and port as a universal address. Throws on an invalid host or port. */
export function toUniversalAddress(host: string, port: number): string {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`invalid port ${port}`);
  const h = stripBrackets(host);
  if (!isIPv4(h) && !isIPv6(h)) throw new RangeError(`not an IP address: ${host}`);
  return `${h}.${port >> 8}.${port & 0xff}`;
}

/** Parses a universal address; null when it is not one (wrong shape, bad host, byte > 255). */
export function parseUniversalAddress(uaddr: string): InetAddress | null {
  if (uaddr.length > 64) return null;
  const m = /^(.+)\.(\d{1,3})\.(\d{1,3})$/.exec(uaddr);
  if (m === null) return null;
  const hi = Number(m[2]);
  const lo = Number(m[3]);
  if (hi > 255 || lo > 255) return null;
  const host = m[1];
  if (isIPv4(host)) return { host, port: (hi << 8) | lo, family: 4 };
  if (isIPv6(host)) return { host, port: (hi << 8) | lo, family: 6 };
  return null;
}

/** True for the wildcard hosts a server binds to when it serves every interface. */
export function isWildcardHost(host: string): boolean {
  const h = stripBrackets(host);
  return h === '0.0.0.0' || h === '::' || h === '::0' || h === '0:0:0:0:0:0:0:0';
}

/**
 * True when an address a call came from is this machine's loopback: 127.0.0.0/8, ::1, or an
 * IPv4 loopback address mapped into IPv6 (what a dual-stack socket reports).
 */
export function isLoopbackAddress(address: string): boolean {
  let a = stripBrackets(address);
  if (a.toLowerCase().startsWith('::ffff:')) a = a.slice(7);
  if (isIPv4(a)) return a.startsWith('127.');
  if (isIPv6(a)) return expandIPv6(a).every((w, i) => w === (i === 7 ? 1 : 0));
  return false;
}

/**
 * Replaces a wildcard host in a universal address by the address the caller reached us on,
 * so that a service registered as "0.0.0.0.p1.p2" is reported at an address the caller can use
 * (rpcbind's "merged address"). Returns the address unchanged when there is nothing to merge.
 */
export function mergeAddress(uaddr: string, localAddress: string | undefined): string {
  if (localAddress === undefined || localAddress === '') return uaddr;
  const parsed = parseUniversalAddress(uaddr);
  if (parsed === null || !isWildcardHost(parsed.host)) return uaddr;
  let local = stripBrackets(localAddress);
  if (local.toLowerCase().startsWith('::ffff:') && parsed.family === 4) local = local.slice(7);
  const localFamily = isIPv4(local) ? 4 : isIPv6(local) ? 6 : 0;
  if (localFamily !== parsed.family) return uaddr;
  return toUniversalAddress(local, parsed.port);
}

// ------------------------------------------------------------------------------ taddr ---

const AF_INET = 2;
const AF_INET6 = 10;
const SOCKADDR_IN_SIZE = 16;
const SOCKADDR_IN6_SIZE = 28;

/**
 * A universal address as the server's native socket address (Linux `struct sockaddr_in` or
 * `sockaddr_in6`, family in host byte order, port and address in network order). Null when the
 * address does not parse.
 */
export function uaddrToTaddr(uaddr: string): Buffer | null {
  const a = parseUniversalAddress(uaddr);
  if (a === null) return null;
  if (a.family === 4) {
    const b = Buffer.alloc(SOCKADDR_IN_SIZE);
    writeFamily(b, AF_INET);
    b.writeUInt16BE(a.port, 2);
    const parts = a.host.split('.').map(Number);
    for (let i = 0; i < 4; i++) b[4 + i] = parts[i];
    return b;
  }
  const b = Buffer.alloc(SOCKADDR_IN6_SIZE);
  writeFamily(b, AF_INET6);
  b.writeUInt16BE(a.port, 2);
  // flowinfo (4 bytes) stays zero; the address follows it; scope id stays zero.
  const words = expandIPv6(a.host);
  for (let i = 0; i < 8; i++) b.writeUInt16BE(words[i], 8 + 2 * i);
  return b;
}

/** The inverse of uaddrToTaddr; null when the bytes are not a socket address of either family. */
export function taddrToUaddr(taddr: Uint8Array): string | null {
  const b = Buffer.from(taddr.buffer, taddr.byteOffset, taddr.byteLength);
  if (b.length < 2) return null;
  const family = endianness() === 'LE' ? b.readUInt16LE(0) : b.readUInt16BE(0);
  if (family === AF_INET && b.length >= 8) {
    return toUniversalAddress(`${b[4]}.${b[5]}.${b[6]}.${b[7]}`, b.readUInt16BE(2));
  }
  if (family === AF_INET6 && b.length >= 24) {
    const words: string[] = [];
    for (let i = 0; i < 8; i++) words.push(b.readUInt16BE(8 + 2 * i).toString(16));
    return toUniversalAddress(compressIPv6(words), b.readUInt16BE(2));
  }
  return null;
}

function writeFamily(b: Buffer, family: number): void {
  if (endianness() === 'LE') b.writeUInt16LE(family, 0);
  else b.writeUInt16BE(family, 0);
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** The eight 16-bit words of a valid IPv6 address (embedded IPv4 and "::" handled). */
function expandIPv6(addr: string): number[] {
  let a = addr;
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  // A trailing dotted IPv4 part becomes two hex words.
  const lastColon = a.lastIndexOf(':');
  const last = a.slice(lastColon + 1);
  if (isIPv4(last)) {
    const p = last.split('.').map(Number);
    a = `${a.slice(0, lastColon + 1)}${((p[0] << 8) | p[1]).toString(16)}:${((p[2] << 8) | p[3]).toString(16)}`;
  }
  const parse = (s: string) => (s === '' ? [] : s.split(':').map((x) => Number.parseInt(x, 16)));
  const gap = a.indexOf('::');
  if (gap < 0) return parse(a);
  const head = parse(a.slice(0, gap));
  const tail = parse(a.slice(gap + 2));
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

/** Text of eight hex words with the longest run of zero words written as "::". */
function compressIPv6(words: string[]): string {
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return words.join(':');
  return `${words.slice(0, best).join(':')}::${words.slice(best + bestLen).join(':')}`;
}
