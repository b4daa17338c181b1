/**
 * The SSH wire encoding (RFC 4251 §5) for the few types certificates and key blobs use:
 * uint32, uint64, string (length-prefixed bytes) and name lists.
 */
import { FluidError } from '../../shared/errors.ts';

export class SshWriter {
  private readonly parts: Buffer[] = [];

  u32(n: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    this.parts.push(b);
    return this;
  }

  u64(n: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(n);
    this.parts.push(b);
    return this;
  }

  /** A length-prefixed byte string. */
  string(s: Buffer | string): this {
    const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
    this.u32(b.length);
    this.parts.push(b);
    return this;
  }

  raw(b: Buffer): this {
    this.parts.push(b);
    return this;
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export class SshReader {
  private offset = 0;
  private readonly buf: Buffer;
  private readonly what: string;

  constructor(buf: Buffer, what = 'SSH data') {
    this.buf = buf;
    this.what = what;
  }

  get position(): number {
    return this.offset;
  }

  get remaining(): number {
    return this.buf.length - this.offset;
  }

  private need(n: number): void {
    if (this.offset + n > this.buf.length)
      throw new FluidError('VALIDATION', `Malformed ${this.what}: it ends in the middle of a field.`);
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  u64(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.offset);
    this.offset += 8;
    return v;
  }

  string(): Buffer {
    const len = this.u32();
    this.need(len);
    const v = this.buf.subarray(this.offset, this.offset + len);
    this.offset += len;
    return v;
  }

  text(): string {
    return this.string().toString('utf8');
  }

  end(): void {
    if (this.remaining !== 0)
      throw new FluidError(
        'VALIDATION',
        `Malformed ${this.what}: ${this.remaining} unexpected trailing bytes.`,
      );
  }
}

/** Read a packed sequence of strings (as in principals or option lists). */
export function readStrings(buf: Buffer, what: string): string[] {
  const r = new SshReader(buf, what);
  const out: string[] = [];
  while (r.remaining > 0) out.push(r.text());
  return out;
}
