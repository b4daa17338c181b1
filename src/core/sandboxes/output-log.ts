/**
 * The output of a run, a terminal or a console as it arrives, kept bounded: the newest `cap` bytes
 * stay, older chunks are counted as dropped. Positions are byte offsets in the whole stream since it
 * began, so a reader that had everything up to offset N attaches again from N and gets exactly what
 * followed — or, when that is gone, a count of the bytes it missed first.
 *
 * Text is decoded per stream as it arrives (a UTF-8 sequence split between chunks is joined), so a
 * reader never sees half a character.
 */
import { StringDecoder } from 'node:string_decoder';

export interface OutputChunk<K extends string = string> {
  kind: K;
  data: string;
  /** Byte offset where the chunk starts in the stream. */
  start: number;
  /** Byte offset after the chunk: attach from here to continue. */
  end: number;
}

/** What a reader gets from an offset: what it missed (dropped) and the chunks it has not seen. */
export interface OutputSlice<K extends string = string> {
  dropped: number;
  chunks: OutputChunk<K>[];
}

export class OutputLog<K extends string = string> {
  private readonly chunks: OutputChunk<K>[] = [];
  private readonly decoders = new Map<K, StringDecoder>();
  private readonly listeners = new Set<(c: OutputChunk<K>) => void>();
  private kept = 0;
  private readonly perKind = new Map<K, number>();
  /** Bytes seen in total (the offset after the newest chunk). */
  total = 0;
  readonly cap: number;

  constructor(cap: number) {
    if (!(cap > 0)) throw new Error('OutputLog needs a positive capacity');
    this.cap = cap;
  }

  /** Bytes before the oldest chunk still kept. */
  get dropped(): number {
    return this.chunks.length ? this.chunks[0]!.start : this.total;
  }

  /** Bytes seen of one kind (stdout, stderr…). */
  bytes(kind: K): number {
    return this.perKind.get(kind) ?? 0;
  }

  push(kind: K, raw: Buffer): OutputChunk<K> | null {
    if (!raw.length) return null;
    let dec = this.decoders.get(kind);
    if (!dec) this.decoders.set(kind, (dec = new StringDecoder('utf8')));
    const start = this.total;
    this.total += raw.length;
    this.perKind.set(kind, this.bytes(kind) + raw.length);
    let data = dec.write(raw);
    let size = raw.length;
    if (size > this.cap) {
      // One chunk larger than the window: keep its newest part.
      data = Buffer.from(data, 'utf8').subarray(-this.cap).toString('utf8');
      size = this.cap;
    }
    const chunk: OutputChunk<K> = { kind, data, start: this.total - size, end: this.total };
    const last = this.chunks.at(-1);
    if (last && last.kind === kind && last.end === chunk.start && last.end - last.start < 16 * 1024) {
      // Small consecutive chunks of one stream are kept as one (fewer objects, same offsets).
      last.data += data;
      last.end = chunk.end;
    } else this.chunks.push(chunk);
    this.kept += size;
    while (this.kept > this.cap && this.chunks.length > 1) this.kept -= this.evict();
    if (data) for (const l of this.listeners) l({ ...chunk, start });
    return chunk;
  }

  private evict(): number {
    const c = this.chunks.shift()!;
    return c.end - c.start;
  }

  /** What a reader that has everything before `offset` still needs (offset 0: all that is kept). */
  from(offset: number): OutputSlice<K> {
    const first = this.dropped;
    const out: OutputChunk<K>[] = [];
    for (const c of this.chunks) if (c.end > offset) out.push(cutBefore(c, offset));
    // Asked for output that is gone: say how much of it was missed (never negative).
    const dropped = offset < first ? first - offset : 0;
    return { dropped, chunks: out };
  }

  /** The newest chunks up to `max` bytes (what is persisted when a run ends). */
  tail(max: number): OutputChunk<K>[] {
    const out: OutputChunk<K>[] = [];
    let size = 0;
    for (let i = this.chunks.length - 1; i >= 0 && size < max; i--) {
      const c = this.chunks[i]!;
      const len = c.end - c.start;
      if (size + len <= max) {
        out.unshift({ ...c });
        size += len;
      } else {
        const room = max - size;
        const data = Buffer.from(c.data, 'utf8').subarray(-room).toString('utf8');
        out.unshift({ kind: c.kind, data, start: c.end - room, end: c.end });
        size = max;
      }
    }
    return out;
  }

  /** Every new chunk as it arrives; returns the unsubscribe function. */
  subscribe(listener: (c: OutputChunk<K>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** Chunks read back from storage: what is kept of an ended stream. */
export function sliceOf<K extends string>(
  chunks: OutputChunk<K>[],
  total: number,
  offset: number,
): OutputSlice<K> {
  const first = chunks.length ? chunks[0]!.start : total;
  return {
    dropped: offset < first ? first - offset : 0,
    chunks: chunks.filter((c) => c.end > offset).map((c) => cutBefore(c, offset)),
  };
}

/** A chunk without the bytes before `offset` (a reader had them: chunks merge after they were sent). */
function cutBefore<K extends string>(c: OutputChunk<K>, offset: number): OutputChunk<K> {
  if (offset <= c.start) return { ...c };
  const data = Buffer.from(c.data, 'utf8')
    .subarray(offset - c.start)
    .toString('utf8');
  return { kind: c.kind, data, start: offset, end: c.end };
}
