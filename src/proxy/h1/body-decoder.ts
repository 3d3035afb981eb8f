import { HeadError, MAX_HEAD_BYTES, parseTrailerFields, type BodyFraming, type HeaderValues } from './head-parser.js';

/** At most 13 hex digits per chunk size (2^52 bytes): no precision loss, no overflow games. */
const MAX_CHUNK_SIZE_DIGITS = 13;

const enum S {
  Size,
  Ext,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  TrailerLine,
  TrailerLineLf,
  EndLf,
  Done,
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Incremental decoder of one message body (Content-Length, chunked or read-until-close). `feed`
 * hands body bytes to `onData` as slices of the input (no copies) and returns how far it read, so
 * bytes after the message (a pipelined request, the next response) stay with the caller.
 * Malformed chunked framing throws a HeadError (400).
 */
export class BodyDecoder {
  done: boolean;
  /** Body bytes decoded so far. */
  received = 0;
  private remaining: number;
  private readonly chunked: boolean;
  private state: S = S.Size;
  private digits = 0;
  private trailerBytes = 0;
  /** The raw trailer section of a chunked body, collected byte by byte (trailers are rare). */
  private trailerText = '';
  /** Trailer fields of a chunked body, once `done` (undefined when there were none). */
  trailers: HeaderValues | undefined;

  constructor(framing: BodyFraming) {
    this.chunked = framing.kind === 'chunked';
    this.remaining = framing.kind === 'length' ? framing.length : framing.kind === 'close' ? Infinity : 0;
    this.done = framing.kind === 'none';
  }

  feed(buf: Buffer, start: number, end: number, onData: (chunk: Buffer) => void): number {
    if (this.done) return start;
    if (!this.chunked) {
      const n = Math.min(end - start, this.remaining);
      if (n > 0) {
        this.remaining -= n;
        this.received += n;
        onData(start === 0 && n === buf.length ? buf : buf.subarray(start, start + n));
      }
      if (this.remaining === 0) this.done = true;
      return start + n;
    }
    let i = start;
    while (i < end) {
      const c = buf[i];
      switch (this.state) {
        case S.Size: {
          const h = hexValue(c);
          if (h >= 0) {
            if (++this.digits > MAX_CHUNK_SIZE_DIGITS) throw new HeadError(400, 'chunk size too large');
            this.remaining = this.remaining * 16 + h;
            i++;
            break;
          }
          if (this.digits === 0) throw new HeadError(400, 'invalid chunk size');
          if (c === 59 /* ; */) this.state = S.Ext;
          else if (c === 13) this.state = S.SizeLf;
          else throw new HeadError(400, 'invalid chunk size');
          i++;
          break;
        }
        case S.Ext:
          if (c === 13) this.state = S.SizeLf;
          else if (c === 10 || (c < 32 && c !== 9)) throw new HeadError(400, 'invalid chunk extension');
          else if (++this.trailerBytes > MAX_HEAD_BYTES) throw new HeadError(400, 'chunk extension too large');
          i++;
          break;
        case S.SizeLf:
          if (c !== 10) throw new HeadError(400, 'bare CR after chunk size');
          i++;
          this.digits = 0;
          if (this.remaining === 0) this.state = S.TrailerStart;
          else this.state = S.Data;
          break;
        case S.Data: {
          const n = Math.min(end - i, this.remaining);
          onData(buf.subarray(i, i + n));
          this.received += n;
          this.remaining -= n;
          i += n;
          if (this.remaining === 0) this.state = S.DataCr;
          break;
        }
        case S.DataCr:
          if (c !== 13) throw new HeadError(400, 'chunk data longer than its size');
          this.state = S.DataLf;
          i++;
          break;
        case S.DataLf:
          if (c !== 10) throw new HeadError(400, 'bare CR after chunk data');
          this.state = S.Size;
          i++;
          break;
        case S.TrailerStart:
          if (c === 13) this.state = S.EndLf;
          else if (c === 10) throw new HeadError(400, 'bare LF in trailer');
          else {
            this.state = S.TrailerLine;
            this.trailerText += String.fromCharCode(c);
          }
          i++;
          break;
        case S.TrailerLine:
          if (c === 13) this.state = S.TrailerLineLf;
          else if (c === 10) throw new HeadError(400, 'bare LF in trailer');
          if (++this.trailerBytes > MAX_HEAD_BYTES) throw new HeadError(431, 'trailer too large');
          this.trailerText += String.fromCharCode(c);
          i++;
          break;
        case S.TrailerLineLf:
          if (c !== 10) throw new HeadError(400, 'bare CR in trailer');
          this.trailerText += '\n';
          this.state = S.TrailerStart;
          i++;
          break;
        case S.EndLf:
          if (c !== 10) throw new HeadError(400, 'bare CR at end of chunked body');
          // Field lines are checked like a head's (a malformed trailer is a 400, as a head would be).
          if (this.trailerText) this.trailers = parseTrailerFields(this.trailerText);
          this.state = S.Done;
          this.done = true;
          return i + 1;
        default:
          return i;
      }
    }
    return i;
  }
}

/** Frames one chunk of a chunked body. */
export function chunkHeader(length: number): string {
  return `${length.toString(16)}\r\n`;
}
