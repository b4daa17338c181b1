/**
 * A data directory with the lab host registered (through the CLI door), and the cleanup that leaves
 * the lab as it was: every sandbox of this data dir destroyed through the CLI, then this installation's
 * own directory on the host (its base copies) removed. Nothing else on the host is touched.
 */
import Database from 'better-sqlite3';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Lab } from './lab.ts';
import { ROOT } from './server.ts';

const run = promisify(execFile);

export interface LabData {
  dataDir: string;
  /** The lab host's name in this data dir. */
  hostName: string;
  /** Run the CLI on this data dir (JSON output parsed when it is JSON). */
  cli(args: string[], opts?: { timeoutMs?: number }): Promise<unknown>;
  /**
   * Run the CLI on a real pseudo-terminal (util-linux `script`), as a person at a terminal would:
   * a decision from a process without one is refused. Returns what it printed and its exit code.
   */
  cliOnTerminal(args: string[]): Promise<{ code: number | null; out: string }>;
  /** Destroy every sandbox of this data dir and remove its installation directory on the host. */
  cleanup(): Promise<string[]>;
}

function fluidArgs(dataDir: string, args: string[]): string[] {
  return [join(ROOT, 'bin/fluid.js'), '--data-dir', dataDir, '--json', ...args];
}

export function prepareLabData(lab: Lab, opts: { hostName?: string; check?: boolean } = {}): LabData {
  const dataDir = mkdtempSync(join(tmpdir(), 'fluid-e2e-lab-'));
  const hostName = opts.hostName ?? 'lab';
  execFileSync(
    process.execPath,
    fluidArgs(dataDir, [
      'host',
      'add',
      `${lab.sshUser}@${lab.sshHost}:${lab.sshPort}`,
      '--key',
      lab.keyPath,
      '--accept-fingerprint',
      lab.hostKeyFingerprint,
      '--name',
      hostName,
      ...(opts.check === false ? ['--no-check'] : []),
    ]),
    { cwd: ROOT, stdio: 'pipe', env: { ...process.env, FLUID_DATA_DIR: dataDir }, timeout: 120_000 },
  );
  // No warm template behind a test's first sandbox: building one boots and saves another VM, which a
  // test creating one or two sandboxes never restores (a cold boot costs what a build and a restore do)
  execFileSync(process.execPath, fluidArgs(dataDir, ['settings', 'set', 'sandboxes.warmTemplates=false']), {
    cwd: ROOT,
    stdio: 'pipe',
    env: { ...process.env, FLUID_DATA_DIR: dataDir },
    timeout: 60_000,
  });

  async function cli(args: string[], o: { timeoutMs?: number } = {}): Promise<unknown> {
    const { stdout } = await run(process.execPath, fluidArgs(dataDir, args), {
      cwd: ROOT,
      env: { ...process.env, FLUID_DATA_DIR: dataDir },
      timeout: o.timeoutMs ?? 180_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    try {
      return JSON.parse(stdout) as unknown;
    } catch {
      return stdout;
    }
  }

  function cliOnTerminal(args: string[]): Promise<{ code: number | null; out: string }> {
    const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
    const cmd = [process.execPath, ...fluidArgs(dataDir, args)].map(quote).join(' ');
    return new Promise((resolve, reject) => {
      const child = spawn('script', ['-qec', cmd, '/dev/null'], {
        cwd: ROOT,
        env: { ...process.env, FLUID_DATA_DIR: dataDir },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, out }));
    });
  }

  async function cleanup(): Promise<string[]> {
    const problems: string[] = [];
    let installation: string | null = null;
    let storageDir = '/var/lib/fluid';
    try {
      const db = new Database(join(dataDir, 'fluid.db'), { readonly: true, fileMustExist: true });
      try {
        installation =
          (
            db.prepare("SELECT value FROM meta WHERE key = 'installation'").get() as
              { value: string } | undefined
          )?.value ?? null;
      } finally {
        db.close();
      }
      const hosts = (await cli(['host', 'list'])) as Array<{ name: string; storageDir?: string }>;
      storageDir = hosts.find((h) => h.name === hostName)?.storageDir ?? storageDir;
    } catch (err) {
      problems.push(`reading the data dir: ${(err as Error).message}`);
    }
    try {
      const list = (await cli(['sandbox', 'list', '--all'])) as Array<{
        id: string;
        name: string;
        state: string;
      }>;
      for (const sb of list.filter((s) => s.state !== 'destroyed')) {
        try {
          await cli(['sandbox', 'destroy', sb.id]);
        } catch (err) {
          problems.push(
            `destroying ${sb.name}: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`,
          );
        }
      }
    } catch (err) {
      problems.push(`listing sandboxes: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`);
    }
    // Only this installation's own directory (bases, templates, sandboxes), and only if it is one.
    if (installation && /^[0-9a-f-]{36}$/.test(installation) && !problems.length) {
      const known = join(dataDir, 'e2e_known_hosts');
      const keyLine = lab.hostKeyPublic;
      const hostOpts = keyLine
        ? (writeFileSync(known, `[${lab.sshHost}]:${lab.sshPort} ${keyLine}\n`),
          ['-o', `UserKnownHostsFile=${known}`, '-o', 'StrictHostKeyChecking=yes'])
        : ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null'];
      try {
        await run(
          'ssh',
          [
            '-i',
            lab.keyPath,
            '-p',
            String(lab.sshPort),
            '-o',
            'BatchMode=yes',
            ...hostOpts,
            `${lab.sshUser}@${lab.sshHost}`,
            // a domain of this installation still defined (a warm template whose build the stopped
            // server left behind) goes first, then the directory
            `for d in $(virsh -c qemu:///system list --all --name); do ` +
              `virsh -c qemu:///system dumpxml "$d" 2>/dev/null | grep -q 'installation="${installation}"' && ` +
              `{ echo "left behind: $d" >&2; virsh -c qemu:///system destroy "$d" >/dev/null 2>&1; ` +
              `virsh -c qemu:///system undefine "$d" --managed-save >/dev/null 2>&1; }; done; ` +
              `rm -rf -- '${storageDir.replace(/\/+$/, '')}/${installation}'`,
          ],
          { timeout: 60_000 },
        );
      } catch (err) {
        problems.push(`removing the installation dir: ${(err as Error).message}`);
      }
    }
    if (!problems.length) rmSync(dataDir, { recursive: true, force: true });
    return problems;
  }

  return { dataDir, hostName, cli, cliOnTerminal, cleanup };
}
