/**
 * Cost of one audit append, side by side in one run:
 *
 *   previous     the way before signed checkpoints: statements prepared on every call, and the chain's
 *                head written to audit-head.json and renamed into place on every append
 *   checkpoints  the current AuditLog: statements prepared once, a signed checkpoint (ed25519, a line
 *                appended to audit-checkpoints.jsonl) cut every 64 entries, no file touched otherwise
 *   every entry  the current AuditLog when every append is an important action (each one signed and
 *                appended to the file): the worst case, e.g. a burst of approval decisions
 *
 * Host copies are delivered in the background (one round trip per host per batch), off the append path,
 * so they are not part of this number. Each approach gets a fresh data dir (SQLite in WAL mode with
 * synchronous=NORMAL, as Fluid opens it); rounds alternate so that the machine's noise hits all three.
 *
 * Run: node bench/audit.ts [appends per round] [rounds]
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog, entryHash, GENESIS_HASH, type AuditInput } from '../src/core/store/audit.ts';
import { CHECKPOINT_FILE, CheckpointLog } from '../src/core/audit/checkpoints.ts';
import { AuditSigner } from '../src/core/audit/signer.ts';
import { openDatabase, type Db } from '../src/core/store/db.ts';
import { MemorySecretStore } from '../src/core/platform/secrets.ts';
import { canonicalJson } from '../src/core/util/canonical.ts';
import { systemClock } from '../src/core/platform/clock.ts';

const APPENDS = Number(process.argv[2] ?? 5000);
const ROUNDS = Number(process.argv[3] ?? 5);

/** The append as it was before checkpoints (same SQL, same hashing; head file renamed per entry). */
function previousAppend(db: Db, headFile: string, input: AuditInput): void {
  db.transaction(() => {
    const last = db.prepare('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1').get() as
      { seq: number; hash: string } | undefined;
    const seq = (last?.seq ?? 0) + 1;
    const base = {
      seq,
      ts: new Date().toISOString(),
      actor: input.actor,
      action: input.action,
      target: input.target ?? null,
      data: JSON.parse(canonicalJson(input.data ?? null)) as unknown,
      prevHash: last?.hash ?? GENESIS_HASH,
    };
    const hash = entryHash(base);
    db.prepare(
      `INSERT INTO audit_log (seq, ts, actor_door, actor_id, action, target, data, prev_hash, hash)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      seq,
      base.ts,
      base.actor.door,
      base.actor.id,
      base.action,
      base.target,
      canonicalJson(base.data),
      base.prevHash,
      hash,
    );
    const tmp = `${headFile}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ seq, hash }), { mode: 0o600 });
    renameSync(tmp, headFile);
  }).immediate();
}

interface Approach {
  name: string;
  setup(dir: string): { append(i: number): void; close(): void };
}

const input = (i: number, action = 'tool.call'): AuditInput => ({
  actor: { door: 'agent', id: `session-${i % 200}` },
  action,
  target: `sandbox-${i % 50}`,
  data: { tool: 'run_command', args: { command: 'systemctl status nginx' }, ms: i % 97 },
});

const approaches: Approach[] = [
  {
    name: 'previous',
    setup(dir) {
      const db = openDatabase(join(dir, 'fluid.db'));
      const head = join(dir, 'audit-head.json');
      return { append: (i) => previousAppend(db, head, input(i)), close: () => db.close() };
    },
  },
  ...[false, true].map((everyEntry): Approach => ({
    name: everyEntry ? 'every entry' : 'checkpoints',
    setup(dir) {
      const db = openDatabase(join(dir, 'fluid.db'));
      const log = new AuditLog(db, systemClock, null, null);
      log.attach(
        new CheckpointLog({
          db,
          clock: systemClock,
          signer: new AuditSigner(new MemorySecretStore(), db),
          installation: 'bench',
          file: join(dir, CHECKPOINT_FILE),
        }),
      );
      return {
        append: (i) => void log.append(input(i, everyEntry ? 'approval.decide' : 'tool.call')),
        close: () => db.close(),
      };
    },
  })),
];

const results = new Map<string, { wall: number[]; cpu: number[] }>(
  approaches.map((a) => [a.name, { wall: [], cpu: [] }]),
);
for (let round = 0; round < ROUNDS; round++) {
  for (const a of approaches) {
    const dir = mkdtempSync(join(tmpdir(), 'fluid-bench-audit-'));
    const s = a.setup(dir);
    for (let i = 0; i < 200; i++) s.append(i); // warm up (JIT, page cache)
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < APPENDS; i++) s.append(i);
    const wall = Number(process.hrtime.bigint() - t0) / 1000 / APPENDS;
    const c = process.cpuUsage(cpu0);
    s.close();
    rmSync(dir, { recursive: true, force: true });
    results.get(a.name)!.wall.push(wall);
    results.get(a.name)!.cpu.push((c.user + c.system) / APPENDS);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const prev = results.get('previous')!;
console.log(`audit append, ${APPENDS} appends x ${ROUNDS} rounds (median per append)`);
console.log('approach       wall µs   cpu µs   previous/this (wall)   previous/this (cpu)');
for (const [name, r] of results) {
  const w = median(r.wall);
  const c = median(r.cpu);
  console.log(
    `${name.padEnd(13)} ${w.toFixed(1).padStart(8)} ${c.toFixed(1).padStart(8)}   ${(median(prev.wall) / w).toFixed(2).padStart(19)}x ${(median(prev.cpu) / c).toFixed(2).padStart(20)}x`,
  );
}
