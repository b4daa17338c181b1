/**
 * `fluid policy check`: ask the read-only shell policy about a command, or about a stream of
 * them. Needs no database, so it runs on raw argv.
 *
 *   fluid policy check [--mode read-only] [--json] -- '<command>'   exit 0 allow, 1 deny, 2 usage
 *   fluid policy check --jsonl < commands.jsonl                     one JSON string per line in,
 *                                                                    one JSON object per line out
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { Readable, Writable } from 'node:stream';
import { createShellPolicy, POLICY_MODES, type PolicyMode, type ShellPolicy } from '../core/policy/shell.ts';
import type { Command } from './command.ts';

const USAGE = "fluid policy check [--mode read-only] [--json | --jsonl] -- '<command>'";

export interface PolicyIo {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
}

let policy: Promise<ShellPolicy> | null = null;
const getPolicy = (): Promise<ShellPolicy> => (policy ??= createShellPolicy());

const line = (s: string) => (s.endsWith('\n') ? s : `${s}\n`);

function write(out: Writable, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    out.once('error', onError);
    const done = () => {
      out.off('error', onError);
      resolve();
    };
    if (out.write(text)) done();
    else out.once('drain', done);
  });
}

/** Check every line of `input` (each a JSON-encoded string) and write one JSON object per line. */
async function checkLines(p: ShellPolicy, mode: PolicyMode, io: PolicyIo): Promise<number> {
  const rl = createInterface({ input: io.stdin, crlfDelay: Infinity, terminal: false });
  let n = 0;
  let batch = '';
  for await (const raw of rl) {
    n++;
    let command: unknown;
    let out: Record<string, unknown>;
    try {
      command = JSON.parse(raw);
    } catch {
      command = undefined;
    }
    if (typeof command === 'string') {
      const r = p.check(command, mode);
      out = { line: n, command, decision: r.decision, reason: r.reason };
    } else {
      out = {
        line: n,
        command: null,
        decision: 'deny',
        reason: `line ${n} is not a JSON-encoded string`,
      };
    }
    batch += JSON.stringify(out) + '\n';
    if (batch.length > 64 * 1024) {
      await write(io.stdout, batch);
      batch = '';
    }
  }
  if (batch) await write(io.stdout, batch);
  return 0;
}

/** The command behind `fluid policy check`, with its streams injectable for tests. */
export async function policyCheck(
  argv: string[],
  global: { json: boolean },
  io: PolicyIo = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  let values: { mode?: string; json?: boolean; jsonl?: boolean; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: {
        mode: { type: 'string' },
        json: { type: 'boolean' },
        jsonl: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        'data-dir': { type: 'string' },
      },
      allowPositionals: true,
      strict: true,
    }));
  } catch (e) {
    io.stderr.write(line(`${(e as Error).message}\nUsage: ${USAGE}`));
    return 2;
  }
  if (values.help) {
    io.stdout.write(
      line(
        `${USAGE}\n\nCheck a shell command against the read-only policy used on source and production VMs.`,
      ),
    );
    return 0;
  }
  const mode = values.mode ?? 'read-only';
  if (!(POLICY_MODES as readonly string[]).includes(mode)) {
    io.stderr.write(line(`Unknown mode "${mode}". Modes: ${POLICY_MODES.join(', ')}.\nUsage: ${USAGE}`));
    return 2;
  }
  const json = !!values.json || global.json;
  if (values.jsonl) {
    if (positionals.length) {
      io.stderr.write(
        line(`--jsonl reads commands from stdin; do not pass one as an argument.\nUsage: ${USAGE}`),
      );
      return 2;
    }
    const p = await getPolicy();
    try {
      return await checkLines(p, mode as PolicyMode, io);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EPIPE') return 0;
      throw err;
    }
  }
  if (positionals.length !== 1) {
    io.stderr.write(
      line(
        positionals.length
          ? `Pass the command as one quoted argument (got ${positionals.length} words).\nUsage: ${USAGE}`
          : `Which command? Usage: ${USAGE}`,
      ),
    );
    return 2;
  }
  const command = positionals[0]!;
  const p = await getPolicy();
  const r = p.check(command, mode as PolicyMode);
  if (json) io.stdout.write(line(JSON.stringify({ command, mode, ...r })));
  else io.stdout.write(line(`${r.decision}: ${r.reason}`));
  return r.decision === 'allow' ? 0 : 1;
}

export const policyCommands: Record<string, Command> = {
  'policy check': {
    summary: 'Check a shell command against the read-only policy for source and production VMs.',
    usage: USAGE,
    raw: (argv, global) => policyCheck(argv, global),
  },
};
