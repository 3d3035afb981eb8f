/**
 * The little DER (X.690) the CA needs: encoders for building certificates and CSRs, and a reader
 * that walks tag-length-value triples without copying. Hand-written because node:crypto signs and
 * parses but does not build X.509, and node-forge cannot handle EC keys.
 */

export interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  contentStart: number;
  /** Offset just past the content. */
  end: number;
}

export function readTlv(buf: Buffer, offset: number): Tlv {
  if (offset + 2 > buf.length) throw new Error('truncated DER');
  const tag = buf[offset];
  let length = buf[offset + 1];
  let contentStart = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4 || contentStart + count > buf.length) throw new Error('bad DER length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[contentStart + i];
    contentStart += count;
  }
  const end = contentStart + length;
  if (end > buf.length) throw new Error('truncated DER');
  return { tag, start: offset, contentStart, end };
}

/** The TLVs directly inside a constructed TLV. */
export function children(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let offset = parent.contentStart; offset < parent.end; ) {
    const child = readTlv(buf, offset);
    out.push(child);
    offset = child.end;
  }
  return out;
}

export const raw = (buf: Buffer, tlv: Tlv): Buffer => buf.subarray(tlv.start, tlv.end);
export const content = (buf: Buffer, tlv: Tlv): Buffer => buf.subarray(tlv.contentStart, tlv.end);

function lengthSize(length: number): number {
  if (length < 0x80) return 1;
  let size = 1;
  for (let n = length; n > 0; n = Math.floor(n / 256)) size++;
  return size;
}

/** One allocation per TLV: issuing builds a few dozen of them per certificate. */
export function tlv(tag: number, ...parts: Buffer[]): Buffer {
  let length = 0;
  for (const part of parts) length += part.length;
  const header = 1 + lengthSize(length);
  const out = Buffer.allocUnsafe(header + length);
  out[0] = tag;
  if (length < 0x80) out[1] = length;
  else {
    const count = header - 2;
    out[1] = 0x80 | count;
    for (let i = 0, n = length; i < count; i++, n = Math.floor(n / 256)) out[header - 1 - i] = n & 0xff;
  }
  let offset = header;
  for (const part of parts) {
    part.copy(out, offset);
    offset += part.length;
  }
  return out;
}

export const sequence = (...parts: Buffer[]): Buffer => tlv(0x30, ...parts);
export const set = (...parts: Buffer[]): Buffer => tlv(0x31, ...parts);
export const octetString = (bytes: Buffer): Buffer => tlv(0x04, bytes);
export const bitString = (bytes: Buffer, unusedBits = 0): Buffer => tlv(0x03, Buffer.from([unusedBits]), bytes);
export const utf8String = (text: string): Buffer => tlv(0x0c, Buffer.from(text, 'utf8'));
export const DER_NULL = Buffer.from([0x05, 0x00]);
export const DER_TRUE = Buffer.from([0x01, 0x01, 0xff]);
/** `[n] EXPLICIT` (constructed, wraps a whole TLV). */
export const explicit = (n: number, ...parts: Buffer[]): Buffer => tlv(0xa0 | n, ...parts);
/** `[n] IMPLICIT` of a primitive type (replaces its tag). */
export const implicitPrimitive = (n: number, bytes: Buffer): Buffer => tlv(0x80 | n, bytes);

/** A non-negative INTEGER from its unsigned big-endian bytes (minimal, with a 0x00 pad when the top bit is set). */
export function unsignedInteger(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const trimmed = bytes.subarray(i);
  return tlv(0x02, trimmed[0] & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

export const smallInteger = (n: number): Buffer => unsignedInteger(Buffer.from([n]));

const oidCache = new Map<string, Buffer>();

export function oid(dotted: string): Buffer {
  const cached = oidCache.get(dotted);
  if (cached) return cached;
  const arcs = dotted.split('.').map(Number);
  const bytes: number[] = [arcs[0] * 40 + arcs[1]];
  for (const arc of arcs.slice(2)) {
    const chunk: number[] = [arc & 0x7f];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) chunk.unshift((n & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  const encoded = tlv(0x06, Buffer.from(bytes));
  oidCache.set(dotted, encoded);
  return encoded;
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, Zulu. */
export function time(date: Date): Buffer {
  const year = date.getUTCFullYear();
  const rest = `${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}Z`;
  if (year >= 1950 && year < 2050) return tlv(0x17, Buffer.from(`${pad(year % 100)}${rest}`, 'ascii'));
  return tlv(0x18, Buffer.from(`${pad(year, 4)}${rest}`, 'ascii'));
}

/** A named BIT STRING (KeyUsage): bit 0 is the most significant bit of the first byte; trailing zeros dropped. */
export function namedBits(bits: number[]): Buffer {
  const highest = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (const bit of bits) bytes[Math.floor(bit / 8)] |= 0x80 >> bit % 8;
  return bitString(bytes, 7 - (highest % 8));
}
