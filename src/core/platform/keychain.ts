/**
 * The platform keychains that hold the secret store's master key, through the tools each platform
 * ships (no native module): the Secret Service on Linux (`secret-tool` from libsecret-tools, talking
 * to GNOME Keyring, KWallet or KeePassXC over D-Bus), the login keychain on macOS (`security`), and
 * DPAPI on Windows (PowerShell's ProtectedData, bound to the user's Windows login).
 *
 * The app and every headless door use the same backend, so each reads what the other stored. Key
 * material never appears on a command line (where `ps` would show it): it goes through stdin.
 */
import { spawnSync } from 'node:child_process';
import { FluidError } from '../../shared/errors.ts';

/** What sealed a value: one of the keychains, or nothing (`file`: plain text in a 0600 file). */
export type SealedBy = 'secret-service' | 'keychain' | 'dpapi' | 'file';

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
  /** Set when the program could not be started (ENOENT: not installed) or timed out. */
  error?: NodeJS.ErrnoException;
}

/** Runs a program (never through a shell). Injected in tests to check the exact commands. */
export type Runner = (cmd: string, args: string[], opts: { input?: string; timeoutMs: number }) => RunResult;

export const spawnRunner: Runner = (cmd, args, opts) => {
  const r = spawnSync(cmd, args, {
    input: opts.input ?? '',
    encoding: 'utf8',
    timeout: opts.timeoutMs,
    windowsHide: true,
    // Never inherit a terminal: a keychain that wants to prompt does so in the desktop session.
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return {
    status: r.status,
    stdout: r.stdout ?? '',
    stderr: r.stderr ?? '',
    ...(r.error ? { error: r.error as NodeJS.ErrnoException } : {}),
  };
};

/** A keychain unreachable from this process: the message says why and what to do. */
export class KeychainUnavailable extends FluidError {
  constructor(message: string) {
    super('UNAVAILABLE', message);
  }
}

export interface KeyBackend {
  readonly by: Exclude<SealedBy, 'file'>;
  /** For people: "the Secret Service (D-Bus)". */
  readonly label: string;
  /** Whether the keychain answers here; throws KeychainUnavailable otherwise. Cheap-ish (one process). */
  probe(): void;
  /**
   * Keep the store's master key. Returns what the store file records for it (a sealed blob for
   * DPAPI; for keychains that hold the key themselves, an empty string).
   */
  save(storeId: string, key: Buffer): string;
  /** The master key, or null when the keychain holds none for this store. */
  load(storeId: string, recorded: string): Buffer | null;
}

/** Long enough for a person to answer an unlock prompt in the desktop session. */
const KEYCHAIN_TIMEOUT_MS = 60_000;
const KEY_HEX = /^[0-9a-f]{64}$/;

function started(r: RunResult, what: string, install: string): void {
  if (r.error?.code === 'ENOENT') throw new KeychainUnavailable(`${what} is not installed. ${install}`);
  if (r.error?.code === 'ETIMEDOUT')
    throw new KeychainUnavailable(
      `${what} did not answer within ${KEYCHAIN_TIMEOUT_MS / 1000} s (a locked keychain waiting for its password?). Unlock it in the desktop session and try again.`,
    );
  if (r.error) throw new KeychainUnavailable(`${what} could not be run: ${r.error.message}`);
}

function parseKey(text: string, where: string): Buffer {
  const hex = text.trim();
  if (!KEY_HEX.test(hex))
    throw new FluidError(
      'INTERNAL',
      `The secret store's key in ${where} is malformed. Remove the "Fluid secrets" item there and the secrets file to start over (stored keys must be entered again).`,
    );
  return Buffer.from(hex, 'hex');
}

// ---------------------------------------------------------------------------------------------------
// Linux and other freedesktop systems: the Secret Service through secret-tool

export const SECRET_TOOL_INSTALL =
  'Install libsecret-tools and a Secret Service (Debian/Ubuntu: apt install libsecret-tools gnome-keyring; or KeePassXC with its Secret Service integration).';

export function secretServiceBackend(run: Runner = spawnRunner): KeyBackend {
  const attrs = (storeId: string) => ['application', 'fluid', 'fluid-store', storeId];
  const lookup = (storeId: string): RunResult => {
    const r = run('secret-tool', ['lookup', ...attrs(storeId)], { timeoutMs: KEYCHAIN_TIMEOUT_MS });
    started(r, 'secret-tool (libsecret-tools)', SECRET_TOOL_INSTALL);
    // Found: exit 0. Not found: exit 1 and nothing on stderr. Anything else: the service is not there.
    if (r.status !== 0 && (r.status !== 1 || r.stderr.trim()))
      throw new KeychainUnavailable(
        `The Secret Service is not reachable from this process (${r.stderr.trim() || `secret-tool exit ${r.status}`}). Run Fluid in your desktop session, or set DBUS_SESSION_BUS_ADDRESS to a session bus where a keyring (GNOME Keyring, KWallet, KeePassXC) runs unlocked.`,
      );
    return r;
  };
  return {
    by: 'secret-service',
    label: 'the Secret Service (D-Bus: GNOME Keyring, KWallet or KeePassXC)',
    probe() {
      lookup('probe');
    },
    save(storeId, key) {
      const r = run(
        'secret-tool',
        ['store', '--label', `Fluid secrets key (${storeId.slice(0, 8)})`, ...attrs(storeId)],
        { input: key.toString('hex'), timeoutMs: KEYCHAIN_TIMEOUT_MS },
      );
      started(r, 'secret-tool (libsecret-tools)', SECRET_TOOL_INSTALL);
      if (r.status !== 0)
        throw new KeychainUnavailable(
          `The Secret Service did not store Fluid's key: ${r.stderr.trim() || `secret-tool exit ${r.status}`}. Is the keyring unlocked?`,
        );
      return '';
    },
    load(storeId) {
      const r = lookup(storeId);
      if (r.status !== 0 || !r.stdout.trim()) return null;
      return parseKey(r.stdout, 'the Secret Service');
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// macOS: the login keychain through security(1)

const MAC_SERVICE = 'Fluid secrets';
/** security(1) exits 44 when the item does not exist. */
const MAC_NOT_FOUND = 44;

export function macKeychainBackend(run: Runner = spawnRunner): KeyBackend {
  const find = (storeId: string): RunResult => {
    const r = run('/usr/bin/security', ['find-generic-password', '-a', storeId, '-s', MAC_SERVICE, '-w'], {
      timeoutMs: KEYCHAIN_TIMEOUT_MS,
    });
    started(r, '/usr/bin/security', 'It ships with macOS; is this a macOS user session?');
    if (r.status !== 0 && r.status !== MAC_NOT_FOUND)
      throw new KeychainUnavailable(
        `The macOS keychain did not answer (${r.stderr.trim() || `security exit ${r.status}`}). Unlock the login keychain and try again.`,
      );
    return r;
  };
  return {
    by: 'keychain',
    label: 'the macOS login keychain',
    probe() {
      find('probe');
    },
    save(storeId, key) {
      // Interactive mode reads the command from stdin, so the key is never an argument of a process.
      const r = run('/usr/bin/security', ['-i'], {
        input: `add-generic-password -U -a ${storeId} -s "${MAC_SERVICE}" -l "${MAC_SERVICE} key" -w ${key.toString('hex')}\n`,
        timeoutMs: KEYCHAIN_TIMEOUT_MS,
      });
      started(r, '/usr/bin/security', 'It ships with macOS; is this a macOS user session?');
      if (r.status !== 0 || /error/i.test(r.stderr))
        throw new KeychainUnavailable(
          `The macOS keychain did not store Fluid's key: ${r.stderr.trim() || `security exit ${r.status}`}.`,
        );
      return '';
    },
    load(storeId) {
      const r = find(storeId);
      if (r.status !== 0) return null;
      return parseKey(r.stdout, 'the macOS keychain');
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Windows: DPAPI through PowerShell (the sealed key is kept in the store file)

const PS_PROTECT = `$ErrorActionPreference='Stop'; Add-Type -AssemblyName System.Security; $b=[Convert]::FromBase64String([Console]::In.ReadToEnd().Trim()); [Convert]::ToBase64String([Security.Cryptography.ProtectedData]::Protect($b,$null,[Security.Cryptography.DataProtectionScope]::CurrentUser))`;
const PS_UNPROTECT = `$ErrorActionPreference='Stop'; Add-Type -AssemblyName System.Security; $b=[Convert]::FromBase64String([Console]::In.ReadToEnd().Trim()); [Convert]::ToBase64String([Security.Cryptography.ProtectedData]::Unprotect($b,$null,[Security.Cryptography.DataProtectionScope]::CurrentUser))`;

export function dpapiBackend(run: Runner = spawnRunner): KeyBackend {
  const ps = (script: string, input: string): string => {
    const r = run('powershell.exe', ['-NoProfile', '-NonInteractive', '-Command', script], {
      input,
      timeoutMs: KEYCHAIN_TIMEOUT_MS,
    });
    started(r, 'powershell.exe', 'It ships with Windows.');
    if (r.status !== 0)
      throw new KeychainUnavailable(`DPAPI refused: ${r.stderr.trim() || `powershell exit ${r.status}`}.`);
    return r.stdout.trim();
  };
  return {
    by: 'dpapi',
    label: 'Windows DPAPI (your Windows login)',
    probe() {
      ps(PS_PROTECT, Buffer.from('probe').toString('base64'));
    },
    save(_storeId, key) {
      return ps(PS_PROTECT, key.toString('base64'));
    },
    load(_storeId, recorded) {
      if (!recorded) return null;
      const plain = Buffer.from(ps(PS_UNPROTECT, recorded), 'base64');
      if (plain.length !== 32)
        throw new FluidError('INTERNAL', 'The secret store key from DPAPI is malformed.');
      return plain;
    },
  };
}

/** The keychain of this platform (or the one FLUID_SECRET_BACKEND names); null means the 0600 file. */
export function platformBackend(
  by: SealedBy | 'auto',
  platform: NodeJS.Platform = process.platform,
  run: Runner = spawnRunner,
): KeyBackend | null {
  const want =
    by !== 'auto'
      ? by
      : platform === 'darwin'
        ? 'keychain'
        : platform === 'win32'
          ? 'dpapi'
          : 'secret-service';
  switch (want) {
    case 'secret-service':
      return secretServiceBackend(run);
    case 'keychain':
      return macKeychainBackend(run);
    case 'dpapi':
      return dpapiBackend(run);
    case 'file':
      return null;
  }
}
