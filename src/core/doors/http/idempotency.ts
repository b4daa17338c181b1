/**
 * Idempotency-Key: a mutating request sent again with the same key (by the same token) gets the first
 * response back instead of acting twice — a create after a timeout, say. Kept in the database for 24
 * hours, so a retry reaching another process or a restarted server is answered the same way.
 *
 *  - same key, same method, path and body, first one finished → its response, replayed (header
 *    `Idempotency-Replayed: true`);
 *  - same key while the first is still running → 409 CONFLICT (retry later);
 *  - same key with another method, path or body → 409 CONFLICT (a key names one request).
 * Responses with a 5xx status are not kept (the retry runs again); neither is a request whose server
 * died while running it (its row names a process that no longer exists).
 */
import { createHash } from 'node:crypto';
import { FluidError } from '../../../shared/errors.ts';
import type { Clock } from '../../platform/clock.ts';
import type { Db } from '../../store/db.ts';

const KEEP_MS = 24 * 3600_000;
const KEY_RE = /^[\x21-\x7e]{1,255}$/;

export interface StoredResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

interface Row {
  method: string;
  path: string;
  body_sha256: string;
  status: number | null;
  headers: string | null;
  body: string | null;
  pid: number;
}

const alive = (pid: number) => {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

export class IdempotencyStore {
  private readonly db: Db;
  private readonly clock: Clock;
  /** Keys this process is running now (a row of ours without one here was left by a crash). */
  private readonly running = new Set<string>();

  constructor(db: Db, clock: Clock) {
    this.db = db;
    this.clock = clock;
  }

  static check(key: string): void {
    if (!KEY_RE.test(key))
      throw new FluidError('VALIDATION', 'Idempotency-Key must be 1 to 255 printable ASCII characters.');
  }

  /** Claim the key, or get the stored response to replay. Throws CONFLICT as above. */
  begin(tokenId: string, key: string, method: string, path: string, body: string): StoredResponse | null {
    IdempotencyStore.check(key);
    const bodyHash = createHash('sha256').update(body).digest('hex');
    const now = this.clock.now();
    return this.db.transaction((): StoredResponse | null => {
      this.db
        .prepare('DELETE FROM http_idempotency WHERE created_at < ?')
        .run(new Date(now.getTime() - KEEP_MS).toISOString());
      const row = this.db
        .prepare('SELECT * FROM http_idempotency WHERE token_id = ? AND key = ?')
        .get(tokenId, key) as Row | undefined;
      if (row) {
        if (row.method !== method || row.path !== path || row.body_sha256 !== bodyHash)
          throw new FluidError(
            'CONFLICT',
            'This Idempotency-Key was used for a different request; use a new key for a new request.',
          );
        if (row.status !== null)
          return {
            status: row.status,
            headers: JSON.parse(row.headers ?? '{}') as Record<string, string>,
            body: row.body ?? '',
          };
        const ours = row.pid === process.pid && this.running.has(`${tokenId}\n${key}`);
        if (ours || (row.pid !== process.pid && alive(row.pid)))
          throw new FluidError(
            'CONFLICT',
            'A request with this Idempotency-Key is still running; retry when it has answered.',
          );
        // left by a server that died while running it: this request runs it again
        this.db.prepare('DELETE FROM http_idempotency WHERE token_id = ? AND key = ?').run(tokenId, key);
      }
      this.db
        .prepare(
          'INSERT INTO http_idempotency (token_id, key, method, path, body_sha256, pid, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
        )
        .run(tokenId, key, method, path, bodyHash, process.pid, now.toISOString());
      this.running.add(`${tokenId}\n${key}`);
      return null;
    })();
  }

  /** Keep the response (or forget the key, for a 5xx: a retry should run again). */
  finish(tokenId: string, key: string, r: StoredResponse): void {
    this.running.delete(`${tokenId}\n${key}`);
    if (r.status >= 500) {
      this.db.prepare('DELETE FROM http_idempotency WHERE token_id = ? AND key = ?').run(tokenId, key);
      return;
    }
    this.db
      .prepare('UPDATE http_idempotency SET status = ?, headers = ?, body = ? WHERE token_id = ? AND key = ?')
      .run(r.status, JSON.stringify(r.headers), r.body, tokenId, key);
  }
}
