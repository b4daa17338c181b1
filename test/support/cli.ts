/** Run the real `fluid` command as a subprocess. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const FLUID_BIN = fileURLToPath(new URL('../../bin/fluid.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  json<T = unknown>(): T;
}

export function fluid(
  args: string[],
  opts: { dataDir: string; stdin?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FLUID_BIN, ...args], {
      env: { ...process.env, ...opts.env, FLUID_DATA_DIR: opts.dataDir },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({
        code,
        stdout,
        stderr,
        json: <T>() => {
          try {
            return JSON.parse(stdout) as T;
          } catch {
            throw new Error(`not JSON (exit ${code}):\n${stdout}\n--- stderr ---\n${stderr}`);
          }
        },
      });
    });
    child.stdin.end(opts.stdin ?? '');
  });
}

/**
 * Run the real `fluid` command on a pseudo-terminal (util-linux `script`), as a person at a terminal
 * would: when it asks for a confirmation, `answer` is typed (omit it to type nothing). Output is the
 * terminal's, stdout and stderr together.
 */
export function fluidOnTerminal(
  args: string[],
  opts: { dataDir: string; answer?: string; env?: NodeJS.ProcessEnv },
): Promise<{ code: number | null; out: string }> {
  const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  const cmd = [process.execPath, FLUID_BIN, ...args].map(quote).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', cmd, '/dev/null'], {
      env: { ...process.env, ...opts.env, FLUID_DATA_DIR: opts.dataDir },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let typed = false;
    const onData = (d: Buffer) => {
      out += d.toString();
      if (!typed && opts.answer !== undefined && /anything else cancels/.test(out)) {
        typed = true;
        child.stdin.write(opts.answer);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}
