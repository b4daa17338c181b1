/** Output helpers for the CLI: JSON for scripts, compact tables and lines for people. */
import { createInterface } from 'node:readline';
import { FluidError, toErrorPayload } from '../shared/errors.ts';

export interface Io {
  json: boolean;
  out(text: string): void;
  err(text: string): void;
  /** Print a value: as JSON in --json mode, otherwise through the formatter. */
  result(value: unknown, human: (v: never) => string): void;
  ask(question: string): Promise<string | null>;
}

export function createIo(json: boolean): Io {
  return {
    json,
    out: (t) => process.stdout.write(t.endsWith('\n') ? t : t + '\n'),
    err: (t) => process.stderr.write(t.endsWith('\n') ? t : t + '\n'),
    result(value, human) {
      if (json) process.stdout.write(JSON.stringify(value, null, 2) + '\n');
      else {
        const text = human(value as never);
        if (text) process.stdout.write(text.endsWith('\n') ? text : text + '\n');
      }
    },
    ask: (question) => readAnswer(question),
  };
}

/** Ask on stderr, read one line from stdin (a TTY or a pipe). Null when stdin has nothing to say. */
function readAnswer(question: string): Promise<string | null> {
  return new Promise((resolve) => {
    process.stderr.write(question);
    const rl = createInterface({ input: process.stdin, terminal: false });
    let answered = false;
    rl.once('line', (line) => {
      answered = true;
      rl.close();
      resolve(line.trim());
    });
    rl.once('close', () => {
      if (!answered) {
        process.stderr.write('\n');
        resolve(null);
      }
    });
  });
}

export function table(
  rows: Array<Record<string, unknown>>,
  columns: Array<[key: string, title: string]>,
): string {
  if (!rows.length) return '';
  const cells = rows.map((r) => columns.map(([k]) => fmt(r[k])));
  const widths = columns.map(([, t], i) => Math.max(t.length, ...cells.map((c) => c[i]!.length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(columns.map(([, t]) => t.toUpperCase())), ...cells.map(line)].join('\n');
}

function fmt(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return String(v);
}

export const STATUS_MARK: Record<string, string> = { pass: 'ok  ', warn: 'warn', fail: 'FAIL' };

export function printError(io: Io, err: unknown): void {
  const p = toErrorPayload(err);
  if (io.json) process.stdout.write(JSON.stringify({ error: p }, null, 2) + '\n');
  else io.err(`error [${p.code}]: ${p.message}`);
}

export class UsageError extends FluidError {
  constructor(message: string) {
    super('VALIDATION', message);
  }
}

export const bytes = (n: number | null | undefined): string => {
  if (n === null || n === undefined) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
};
