/**
 * Checking the chain against its signed checkpoints, wherever they are kept, and naming what disagrees.
 *
 * One pass over the chain, whatever the number of copies: every distinct checkpoint (the same bytes
 * held by the database, the file beside it and three hosts is one) has its signature checked, and the
 * chain is asked for the hash of its entry. A checkpoint with a good signature that the chain does not
 * match means rows were removed or rewritten (the hashes after a rewritten row can be recomputed; the
 * signature cannot); a copy holding a checkpoint the database lacks means the database's own
 * checkpoints were removed or rewritten too.
 */
import type { AuditEntry, AuditVerify } from '../../shared/contract/audit.ts';
import { GENESIS_HASH, verifyEntries, type AuditProblem, type ChainResult } from './chain.ts';
import {
  describeCheckpoint,
  keyFingerprint,
  signatureValid,
  sshPublicKeyLine,
  toLine,
  type Checkpoint,
} from './checkpoint.ts';
import type { CheckpointLog } from './checkpoints.ts';
import type { HostCopy } from './witness.ts';

type Copy = AuditVerify['copies'][number];
type CheckpointStatus = NonNullable<AuditVerify['checkpoint']>;

export interface CheckpointSource {
  /** How messages name it: 'this database', 'the checkpoint file beside the database', 'host kvm1'. */
  name: string;
  checkpoints: Checkpoint[];
}

interface Distinct {
  cp: Checkpoint;
  holders: string[];
  signature: 'valid' | 'invalid' | 'foreign';
  foreignWhy: string;
  chain: 'ok' | 'beyond' | 'absent' | 'mismatch';
}

export interface CheckResult {
  chain: ChainResult;
  problems: AuditProblem[];
  /** Sources named by a problem. */
  disagreeing: Set<string>;
  latest: CheckpointStatus | null;
  /** Entries after the newest checkpoint that has a good signature and matches the chain. */
  uncovered: number;
  /** The chain's stored hash at the seqs asked for in `alsoRecord`. */
  hashAt: Map<number, string>;
}

/** `entries 5..9 were` / `entry 5 was` */
const entryRange = (a: number, b: number) => (a === b ? `entry ${a} was` : `entries ${a}..${b} were`);

const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

function holdersText(names: string[]): string {
  const list = names.length <= 1 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
  return `${cap(list)} ${names.length === 1 ? 'has' : 'have'}`;
}

/**
 * Check the chain and every checkpoint held by `sources`. `reference` (one of the sources, e.g. the
 * database) is the log's own record: checkpoints elsewhere that it lacks are reported.
 */
export function checkAgainstChain(
  entries: Iterable<AuditEntry>,
  sources: CheckpointSource[],
  expect: { log: string | null; key: string | null },
  reference: CheckpointSource | null,
  alsoRecord: number[] = [],
): CheckResult {
  const distinct = new Map<string, Distinct>();
  for (const s of sources)
    for (const cp of s.checkpoints) {
      const k = toLine(cp);
      const d = distinct.get(k);
      if (d) {
        if (!d.holders.includes(s.name)) d.holders.push(s.name);
        continue;
      }
      let signature: Distinct['signature'] = signatureValid(cp) ? 'valid' : 'invalid';
      let foreignWhy = '';
      if (signature === 'valid' && expect.key && cp.key !== expect.key) {
        signature = 'foreign';
        foreignWhy = `is signed by key ${keyFingerprint(cp.key)}, not this log's key ${keyFingerprint(expect.key)}: this installation's key did not make it (or the key was replaced)`;
      } else if (signature === 'valid' && expect.log && cp.log !== expect.log) {
        signature = 'foreign';
        foreignWhy = `belongs to another log (${cp.log}), not ${expect.log}`;
      }
      distinct.set(k, { cp, holders: [s.name], signature, foreignWhy, chain: 'ok' });
    }

  // One pass over the chain, recording the hashes the checkpoints speak of.
  const wanted = new Map<number, string | undefined>();
  for (const d of distinct.values()) if (d.signature !== 'invalid') wanted.set(d.cp.seq, undefined);
  for (const s of alsoRecord) wanted.set(s, undefined);
  const chain = verifyEntries(
    (function* tap() {
      for (const e of entries) {
        if (wanted.has(e.seq)) wanted.set(e.seq, e.hash);
        yield e;
      }
    })(),
  );
  const hashAt = new Map<number, string>();
  for (const [s, h] of wanted) if (h !== undefined) hashAt.set(s, h);

  for (const d of distinct.values()) {
    const { seq, head } = d.cp;
    if (seq === 0) d.chain = head === GENESIS_HASH ? 'ok' : 'mismatch';
    else if (seq > chain.lastSeq) d.chain = 'beyond';
    else if (!hashAt.has(seq)) d.chain = 'absent';
    else d.chain = hashAt.get(seq) === head ? 'ok' : 'mismatch';
  }

  const refByN = new Map<number, Checkpoint>();
  for (const cp of reference?.checkpoints ?? []) refByN.set(cp.n, cp);
  const refName = reference?.name ?? '';

  const problems: AuditProblem[] = [];
  const disagreeing = new Set<string>();
  const sorted = [...distinct.values()].sort((a, b) => a.cp.n - b.cp.n || a.cp.seq - b.cp.seq);
  for (const d of sorted) {
    const { cp } = d;
    const inRef = !!reference && d.holders.includes(refName);
    const refVersion = reference && !inRef ? (refByN.get(cp.n) ?? null) : null;
    const who = holdersText(d.holders);
    const what = `checkpoint ${describeCheckpoint(cp)}`;
    const notInRef =
      !reference || inRef
        ? ''
        : refVersion
          ? `, which differs from ${refName}'s #${cp.n} (seq ${refVersion.seq}, head ${refVersion.head.slice(0, 12)}…)`
          : ` that ${refName} does not contain`;
    const name = (kind: AuditProblem['kind'], message: string) => {
      problems.push({ seq: cp.seq, kind, message });
      for (const h of d.holders) disagreeing.add(h);
    };
    if (d.signature === 'invalid') {
      name(
        'signature',
        `${who} ${what} whose signature does not verify: that copy was altered after it was signed.`,
      );
      continue;
    }
    if (d.signature === 'foreign') {
      name('signature', `${who} ${what} that ${d.foreignWhy}.`);
      continue;
    }
    if (d.chain !== 'ok') {
      const consequence =
        d.chain === 'beyond'
          ? chain.count === 0
            ? `the log is empty, so ${entryRange(1, cp.seq)} removed`
            : `the log ends at entry ${chain.lastSeq}, so ${entryRange(chain.lastSeq + 1, cp.seq)} removed`
          : d.chain === 'absent'
            ? `entry ${cp.seq} is missing from the log, so rows were removed`
            : `the log's entry ${cp.seq} has hash ${hashAt.get(cp.seq)?.slice(0, 12) ?? '?'}…, so entries up to ${cp.seq} were rewritten (with their hashes recomputed)`;
      name('checkpoint', `${who} ${what}${notInRef}: ${consequence}.`);
      continue;
    }
    if (reference && !inRef)
      name(
        'copy',
        `${who} ${what}${notInRef}, and the log still matches it: ${refName}'s checkpoints were removed or rewritten.`,
      );
  }

  // The reference's own record has no holes: checkpoints are numbered 1, 2, 3, …
  if (reference) {
    const ns = reference.checkpoints.map((c) => c.n).sort((a, b) => a - b);
    let expected = 1;
    for (const n of ns) {
      if (n > expected) {
        problems.push({
          seq: refByN.get(n)!.seq,
          kind: 'copy',
          message: `${cap(refName)} lacks checkpoint${n - expected > 1 ? `s #${expected}..#${n - 1}` : ` #${expected}`} (it holds #${n}): ${n - expected > 1 ? 'they were' : 'it was'} removed.`,
        });
        disagreeing.add(refName);
      }
      expected = n + 1;
    }
  }

  // The newest checkpoint: the reference's, or (offline) the newest of all.
  const pool = reference
    ? reference.checkpoints
    : [...distinct.values()].filter((d) => d.signature !== 'invalid').map((d) => d.cp);
  const newest = pool.reduce<Checkpoint | null>((a, c) => (!a || c.n > a.n ? c : a), null);
  let latest: CheckpointStatus | null = null;
  if (newest) {
    const d = distinct.get(toLine(newest))!;
    latest = {
      n: newest.n,
      seq: newest.seq,
      head: newest.head,
      ts: newest.ts,
      signature: d.signature,
      matchesChain: d.chain === 'ok',
    };
  }
  const covering = [...distinct.values()]
    .filter((d) => d.signature === 'valid' && d.chain === 'ok' && (!reference || d.holders.includes(refName)))
    .reduce((m, d) => Math.max(m, d.cp.seq), 0);
  return {
    chain,
    problems,
    disagreeing,
    latest,
    uncovered: Math.max(0, chain.lastSeq - covering),
    hashAt,
  };
}

export const keyInfo = (
  publicKey: string | null,
  problem: string | null,
): NonNullable<AuditVerify['signingKey']> => ({
  fingerprint: publicKey ? keyFingerprint(publicKey) : null,
  publicKey: publicKey ? sshPublicKeyLine(publicKey) : null,
  problem,
});

const DB = 'this database';
const FILE = 'the checkpoint file beside the database';
const hostName = (name: string) => `host ${name}`;

export interface LocalVerifyInput {
  entries: () => Iterable<AuditEntry>;
  checkpoints: CheckpointLog | null;
  /** The head file older builds wrote beside the database (read only now). */
  legacyHead: { seq: number; hash: string } | null;
  /** Hosts' copies (verify with hosts), or null when they were not read. */
  copies: HostCopy[] | null;
}

/** The log in this data dir: chain, signed checkpoints, the file beside it and (given) the hosts' copies. */
export function verifyLog(input: LocalVerifyInput): AuditVerify {
  const cps = input.checkpoints;
  if (!cps) {
    const chain = verifyEntries(input.entries());
    return { ...chain, checkpoint: null, uncovered: 0, signingKey: null, copies: [], notes: [] };
  }
  const signer = cps.signer.state();
  const db: CheckpointSource = { name: DB, checkpoints: cps.all() };
  const file = cps.readFile();
  const fileSource: CheckpointSource = { name: FILE, checkpoints: file.checkpoints };
  const hostSources = (input.copies ?? [])
    .filter((c) => c.status === 'copy')
    .map((c) => ({ copy: c, source: { name: hostName(c.host.name), checkpoints: c.checkpoints } }));
  const legacy = input.legacyHead;
  const r = checkAgainstChain(
    input.entries(),
    [db, fileSource, ...hostSources.map((h) => h.source)],
    { log: cps.installation, key: signer.publicKey },
    db,
    legacy ? [legacy.seq] : [],
  );
  const problems = [...r.chain.problems, ...r.problems];
  const dbMax = db.checkpoints.reduce((m, c) => Math.max(m, c.n), 0);

  // What each copy lacks.
  const lacking = (copy: Checkpoint[]) => {
    const have = new Set(copy.map((c) => c.n));
    const max = copy.reduce((m, c) => Math.max(m, c.n), 0);
    const inside = db.checkpoints.filter((c) => c.n < max && !have.has(c.n)).map((c) => c.n);
    return { max, inside, tail: Math.max(0, dbMax - max) };
  };
  const range = (a: number, b: number) => (a === b ? `#${a}` : `#${a}..#${b}`);
  const latestOf = (list: Checkpoint[]) => {
    const c = list.reduce<Checkpoint | null>((a, x) => (!a || x.n > a.n ? x : a), null);
    return c ? { n: c.n, seq: c.seq, head: c.head } : null;
  };

  const copies: Copy[] = [];
  {
    const details: string[] = [];
    let bad = r.disagreeing.has(FILE);
    if (!file.exists) {
      if (dbMax > 0) {
        problems.push({
          seq: db.checkpoints.at(-1)!.seq,
          kind: 'copy',
          message: `${cap(FILE)} (${cps.file}) is missing, but ${DB} holds ${dbMax} checkpoint${dbMax === 1 ? '' : 's'}: it was deleted.`,
        });
        copies.push({
          kind: 'file',
          name: 'checkpoint file',
          path: cps.file,
          status: 'missing',
          latest: null,
          pending: dbMax,
          detail: 'deleted',
        });
      } else
        copies.push({
          kind: 'file',
          name: 'checkpoint file',
          path: cps.file,
          status: 'ok',
          latest: null,
          pending: 0,
          detail: 'no checkpoint yet',
        });
    } else {
      const l = lacking(file.checkpoints);
      for (const m of file.malformed) {
        bad = true;
        problems.push({
          seq: 0,
          kind: 'copy',
          message: `Line ${m.line} of ${FILE} is not a checkpoint (${m.error}): the file was edited.`,
        });
      }
      if (l.inside.length) {
        bad = true;
        problems.push({
          seq: 0,
          kind: 'copy',
          message: `${cap(FILE)} lacks checkpoint${l.inside.length > 1 ? 's' : ''} ${l.inside.map((n) => `#${n}`).join(', ')} that ${DB} holds: the file was edited.`,
        });
      }
      if (l.tail) {
        bad = true;
        problems.push({
          seq: 0,
          kind: 'copy',
          message: `${cap(FILE)} ends at #${l.max}, but ${DB} holds ${range(l.max + 1, dbMax)} too: the file was cut short (or Fluid stopped between writing the database and the file).`,
        });
      }
      if (file.mode !== null && file.mode & 0o077)
        details.push(`mode ${file.mode.toString(8)}: not owner-only (chmod 600 ${cps.file})`);
      copies.push({
        kind: 'file',
        name: 'checkpoint file',
        path: cps.file,
        status: bad ? 'disagrees' : 'ok',
        latest: latestOf(file.checkpoints),
        pending: 0,
        detail:
          details.join('; ') ||
          (bad
            ? 'see problems'
            : `${file.checkpoints.length} checkpoint${file.checkpoints.length === 1 ? '' : 's'}, same as ${DB}`),
      });
    }
  }

  for (const c of input.copies ?? []) {
    const name = hostName(c.host.name);
    const delivered = c.state.delivered;
    const lastTry = c.state.attemptedAt
      ? ` (last attempt ${c.state.attemptedAt}${c.state.error ? `: ${c.state.error}` : ''})`
      : '';
    const base = { kind: 'host' as const, name: c.host.name, path: c.path };
    if (c.status === 'unreachable') {
      copies.push({
        ...base,
        status: 'unreachable',
        latest: null,
        pending: Math.max(0, dbMax - delivered),
        detail: c.error ?? 'unreachable',
      });
      continue;
    }
    if (c.status !== 'copy') {
      if (delivered > 0) {
        problems.push({
          seq: 0,
          kind: 'copy',
          message: `${cap(name)} has no copy at ${c.path}, though checkpoints ${range(1, delivered)} were delivered to it: its copy was deleted.`,
        });
        copies.push({ ...base, status: 'missing', latest: null, pending: dbMax, detail: 'deleted' });
      } else if (c.status === 'unused' && c.host.kind === 'local')
        copies.push({
          ...base,
          status: 'unused',
          latest: null,
          pending: 0,
          detail: 'Fluid keeps no files on this host yet',
        });
      else
        copies.push({
          ...base,
          status: dbMax ? 'behind' : 'ok',
          latest: null,
          pending: dbMax,
          detail: dbMax ? `nothing delivered yet${lastTry}` : 'no checkpoint yet',
        });
      continue;
    }
    const l = lacking(c.checkpoints);
    let bad = r.disagreeing.has(name);
    for (const m of c.malformed) {
      bad = true;
      problems.push({
        seq: 0,
        kind: 'copy',
        message: `Line ${m.line} of ${name}'s copy (${c.path}) is not a checkpoint (${m.error}): the copy was edited.`,
      });
    }
    if (l.inside.length) {
      bad = true;
      problems.push({
        seq: 0,
        kind: 'copy',
        message: `${cap(name)}'s copy lacks ${l.inside.map((n) => `#${n}`).join(', ')} that ${DB} holds: the copy was edited.`,
      });
    }
    if (l.max < delivered) {
      bad = true;
      problems.push({
        seq: 0,
        kind: 'copy',
        message: `${cap(name)}'s copy ends at #${l.max}, but ${range(l.max + 1, delivered)} ${delivered - l.max > 1 ? 'were' : 'was'} delivered to it: the copy was cut short.`,
      });
    }
    copies.push({
      ...base,
      status: bad ? 'disagrees' : l.tail ? 'behind' : 'ok',
      latest: latestOf(c.checkpoints),
      pending: l.tail,
      detail: bad
        ? 'see problems'
        : l.tail
          ? `${l.tail} checkpoint${l.tail === 1 ? '' : 's'} not delivered yet${lastTry}`
          : `holds #1..#${l.max}, same as ${DB}`,
    });
  }

  if (signer.problem) problems.push({ seq: r.chain.lastSeq, kind: 'signature', message: signer.problem });
  else if (r.uncovered >= cps.policy.everyEntries && (!r.latest || r.latest.matchesChain))
    problems.push({
      seq: r.chain.lastSeq - r.uncovered + 1,
      kind: 'checkpoint',
      message: `Entries ${r.chain.lastSeq - r.uncovered + 1}..${r.chain.lastSeq} are not covered by any checkpoint, but one is cut at least every ${cps.policy.everyEntries} entries: the newest checkpoints were removed.`,
    });

  if (legacy) {
    if (legacy.seq > r.chain.lastSeq)
      problems.push({
        seq: r.chain.lastSeq + 1,
        kind: 'gap',
        message: `Entries ${r.chain.lastSeq + 1}..${legacy.seq} were removed from the end of the log (the head recorded by an earlier version is entry ${legacy.seq}).`,
      });
    else if (r.hashAt.has(legacy.seq) && r.hashAt.get(legacy.seq) !== legacy.hash)
      problems.push({
        seq: legacy.seq,
        kind: 'content',
        message: `Entry ${legacy.seq} does not match the head hash an earlier version recorded beside the database: it was changed or replaced.`,
      });
  }

  const notes: string[] = [];
  if (input.copies === null) notes.push("The hosts' copies were not read.");
  else if (!copies.some((c) => c.kind === 'host' && (c.status === 'ok' || c.status === 'behind') && c.latest))
    notes.push(
      'No host holds a copy of the checkpoints yet: rows removed together with the checkpoints on this machine would not be detected. Add a host, or keep exports elsewhere.',
    );
  const unreachable = copies.filter((c) => c.status === 'unreachable').map((c) => c.name);
  if (unreachable.length) notes.push(`Not compared (unreachable): ${unreachable.join(', ')}.`);

  return {
    ok: problems.length === 0,
    count: r.chain.count,
    lastSeq: r.chain.lastSeq,
    headHash: r.chain.headHash,
    problems,
    checkpoint: r.latest,
    uncovered: r.uncovered,
    signingKey: keyInfo(signer.publicKey, signer.problem),
    copies,
    notes,
  };
}
