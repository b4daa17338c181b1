/**
 * SSH to libvirt hosts with ssh2: pinned host keys (trust on first use only after an explicit
 * confirmation, strict afterwards), TCP_NODELAY, keepalives, streamed exec with caps and cancel.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import ssh2, { Client, type ClientChannel, type ConnectConfig } from 'ssh2';
import { FluidError } from '../../shared/errors.ts';
import type { HostAuth } from '../../shared/contract/hosts.ts';
import {
  OutputBuffer,
  type ExecOptions,
  type ExecResult,
  type HostConnection,
  type HostProcess,
} from './connection.ts';
import { PassThrough } from 'node:stream';

export interface HostKeyInfo {
  type: string;
  fingerprint: string;
}

/** OpenSSH's fingerprint format: SHA256:<unpadded base64>. */
export function fingerprintOf(keyBlob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '');
}

export function keyTypeOf(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return 'unknown';
  const len = keyBlob.readUInt32BE(0);
  return keyBlob.subarray(4, 4 + len).toString('ascii') || 'unknown';
}

export interface SshTarget {
  hostId: string;
  address: string;
  port: number;
  user: string;
  auth: HostAuth;
  /** The pinned fingerprint; the connection is refused if the host presents any other key. */
  fingerprint: string;
  connectTimeoutMs: number;
  /** A private key held in memory (from the secret store): used instead of `auth`. */
  privateKey?: Buffer;
  /** How to reach address:port (for example through a jump host); default: a direct TCP connection. */
  via?: Via;
}

/** Opens a byte stream to address:port (a jump host's forwarded channel, say). */
export type Via = (address: string, port: number) => Promise<Duplex>;

function reach(address: string, port: number, timeoutMs: number, via?: Via): Promise<Duplex> {
  if (!via) return tcpConnect(address, port, timeoutMs);
  let timer: NodeJS.Timeout | null = null;
  return Promise.race([
    via(address, port).finally(() => timer && clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new FluidError(
              'HOST_UNREACHABLE',
              `Timed out reaching ${address}:${port} through the jump host after ${timeoutMs} ms.`,
            ),
          ),
        timeoutMs,
      );
    }),
  ]);
}

function tcpConnect(address: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = netConnect({ host: address, port });
    sock.setNoDelay(true);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(
        new FluidError(
          'HOST_UNREACHABLE',
          `Timed out connecting to ${address}:${port} after ${timeoutMs} ms. Check the address, the port and any firewall in between.`,
        ),
      );
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      resolve(sock);
    });
    sock.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(unreachable(address, port, e));
    });
  });
}

function unreachable(address: string, port: number, e: NodeJS.ErrnoException): FluidError {
  const hint =
    e.code === 'ECONNREFUSED'
      ? 'Nothing accepts connections there: is sshd running and is the port right?'
      : e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN'
        ? 'The name does not resolve: check the address.'
        : 'Check the address, the port and the network path.';
  return new FluidError(
    'HOST_UNREACHABLE',
    `Cannot connect to ${address}:${port} (${e.code ?? e.message}). ${hint}`,
    { errno: e.code },
  );
}

/** Fetch the host key without authenticating (directly, or `via` a jump host). */
export async function probeHostKey(
  address: string,
  port: number,
  timeoutMs: number,
  via?: Via,
): Promise<HostKeyInfo> {
  const sock = await reach(address, port, timeoutMs, via);
  return new Promise((resolve, reject) => {
    const c = new Client();
    let info: HostKeyInfo | null = null;
    const done = (err?: Error) => {
      c.end();
      sock.destroy();
      if (info) resolve(info);
      else
        reject(
          err instanceof FluidError
            ? err
            : new FluidError(
                'HOST_UNREACHABLE',
                `No SSH server answered at ${address}:${port}: ${err?.message ?? 'unknown error'}`,
              ),
        );
    };
    c.on('error', (e) => done(e));
    c.on('close', () => done());
    c.connect({
      sock,
      username: 'fluid-probe',
      readyTimeout: timeoutMs,
      hostVerifier: (key: Buffer) => {
        info = { type: keyTypeOf(key), fingerprint: fingerprintOf(key) };
        return false; // stop here: we only wanted the key
      },
    });
  });
}

function authConfig(auth: HostAuth): Partial<ConnectConfig> {
  if (auth.type === 'key') {
    let privateKey: Buffer;
    try {
      privateKey = readFileSync(auth.keyPath);
    } catch (e) {
      throw new FluidError('VALIDATION', `Cannot read the key file ${auth.keyPath}: ${(e as Error).message}`);
    }
    if (
      /ENCRYPTED|Proc-Type: 4,ENCRYPTED/.test(privateKey.toString('latin1', 0, 400)) ||
      isEncryptedOpenSsh(privateKey)
    ) {
      throw new FluidError(
        'VALIDATION',
        `The key ${auth.keyPath} is protected by a passphrase. Load it into your SSH agent and choose "SSH agent" instead.`,
      );
    }
    return { privateKey };
  }
  if (auth.type === 'agent') {
    const socket = auth.socket || process.env.SSH_AUTH_SOCK;
    if (!socket)
      throw new FluidError(
        'VALIDATION',
        'No SSH agent: SSH_AUTH_SOCK is not set for the Fluid backend. Start an agent or use a key file.',
      );
    return { agent: socket };
  }
  throw new FluidError('VALIDATION', 'The local host is not reached over SSH.');
}

/**
 * Before a person is asked to trust a host key: can Fluid use this key file? It must be an absolute
 * path to a readable private key without a passphrase. Nothing of the key leaves this function but its
 * type and its public key's fingerprint (what `ssh-keygen -lf` prints), for the person to recognise.
 */
export function checkKeyFile(keyPath: string): { keyPath: string; type: string; fingerprint: string } {
  if (!keyPath.startsWith('/'))
    throw new FluidError(
      'VALIDATION',
      keyPath.startsWith('~')
        ? `Write the full path of the key file (for example /home/you/.ssh/id_ed25519): "~" is not expanded.`
        : `The key file must be an absolute path on the machine that runs Fluid, not ${JSON.stringify(keyPath)}.`,
    );
  const { privateKey } = authConfig({ type: 'key', keyPath }) as { privateKey: Buffer };
  const parsed = ssh2.utils.parseKey(privateKey);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error || !key.isPrivateKey())
    throw new FluidError(
      'VALIDATION',
      `${keyPath} is not a private key that Fluid can use${key instanceof Error ? ` (${key.message})` : ''}. Choose the private key (id_ed25519, not id_ed25519.pub).`,
    );
  const pub = key.getPublicSSH();
  return { keyPath, type: key.type, fingerprint: fingerprintOf(pub) };
}

function isEncryptedOpenSsh(buf: Buffer): boolean {
  const text = buf.toString('utf8');
  const m = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]+?)-----END OPENSSH PRIVATE KEY-----/.exec(text);
  if (!m) return false;
  const raw = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
  // "openssh-key-v1\0" then string ciphername
  const off = 15;
  if (raw.length < off + 4) return false;
  const len = raw.readUInt32BE(off);
  return raw.subarray(off + 4, off + 4 + len).toString() !== 'none';
}

export class SshConnection implements HostConnection {
  readonly kind = 'ssh' as const;
  readonly hostId: string;
  private readonly client: Client;
  private isClosed = false;
  private readonly closeListeners = new Set<() => void>();

  private constructor(hostId: string, client: Client) {
    this.hostId = hostId;
    this.client = client;
    client.on('close', () => this.markClosed());
    client.on('end', () => this.markClosed());
    client.on('error', () => this.markClosed());
  }

  get closed(): boolean {
    return this.isClosed;
  }

  onClose(l: () => void): void {
    this.closeListeners.add(l);
  }

  private markClosed(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const l of this.closeListeners) l();
  }

  static async open(t: SshTarget): Promise<SshConnection> {
    const auth = t.privateKey ? { privateKey: t.privateKey } : authConfig(t.auth);
    const sock = await reach(t.address, t.port, t.connectTimeoutMs, t.via);
    return new Promise((resolve, reject) => {
      const client = new Client();
      let presented: HostKeyInfo | null = null;
      let settled = false;
      const fail = (err: FluidError) => {
        if (settled) return;
        settled = true;
        client.end();
        sock.destroy();
        reject(err);
      };
      client.once('ready', () => {
        if (settled) return;
        settled = true;
        client.setNoDelay(true);
        resolve(new SshConnection(t.hostId, client));
      });
      client.once('error', (e: Error & { level?: string }) => {
        if (presented && presented.fingerprint !== t.fingerprint) {
          fail(
            new FluidError(
              'HOSTKEY_MISMATCH',
              `The SSH host key of ${t.address}:${t.port} has changed: it presented ${presented.fingerprint} (${presented.type}), but ${t.fingerprint} is trusted. This could be a man-in-the-middle attack or a reinstalled host. Fluid refuses to connect. If the change is expected, verify the new fingerprint out of band and trust it explicitly (fluid host trust <host> --accept-fingerprint <fingerprint>).`,
              { presented: presented.fingerprint, trusted: t.fingerprint, keyType: presented.type },
            ),
          );
        } else if (e.level === 'client-authentication') {
          fail(
            new FluidError(
              'AUTH_FAILED',
              `${t.user}@${t.address}:${t.port} refused the login (${t.privateKey ? 'the key Fluid holds for it' : t.auth.type === 'key' ? `key ${(t.auth as { keyPath: string }).keyPath}` : 'SSH agent keys'}). Check that the public key is in ~${t.user}/.ssh/authorized_keys on the host and that the user is right.`,
            ),
          );
        } else if (e.level === 'client-timeout') {
          fail(
            new FluidError('HOST_UNREACHABLE', `The SSH handshake with ${t.address}:${t.port} timed out.`),
          );
        } else {
          fail(new FluidError('HOST_UNREACHABLE', `SSH to ${t.address}:${t.port} failed: ${e.message}`));
        }
      });
      client.connect({
        sock,
        username: t.user,
        readyTimeout: t.connectTimeoutMs,
        keepaliveInterval: 15_000,
        keepaliveCountMax: 4,
        hostVerifier: (key: Buffer) => {
          presented = { type: keyTypeOf(key), fingerprint: fingerprintOf(key) };
          return presented.fingerprint === t.fingerprint;
        },
        ...auth,
      });
    });
  }

  exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    if (this.isClosed)
      return Promise.reject(new FluidError('HOST_UNREACHABLE', 'The SSH connection is closed.'));
    return new Promise((resolve, reject) => {
      if (opts.signal?.aborted) return reject(new FluidError('CANCELLED', 'The command was cancelled.'));
      const started = Date.now();
      this.client.exec(command, (err, stream: ClientChannel) => {
        if (err)
          return reject(
            new FluidError('HOST_UNREACHABLE', `Could not start a command on the host: ${err.message}`),
          );
        const out = new OutputBuffer(opts.maxOutputBytes);
        const errb = new OutputBuffer(opts.maxOutputBytes);
        let timedOut = false;
        let code: number | null = null;
        let sig: string | null = null;
        const stop = () => {
          try {
            stream.signal('KILL');
          } catch {
            /* not all servers support signals */
          }
          stream.close();
        };
        const timer = opts.timeoutMs
          ? setTimeout(() => {
              timedOut = true;
              stop();
            }, opts.timeoutMs)
          : null;
        const onAbort = () => stop();
        opts.signal?.addEventListener('abort', onAbort, { once: true });
        stream.on('data', (c: Buffer) => {
          out.push(c);
          opts.onStdout?.(c);
        });
        stream.stderr.on('data', (c: Buffer) => {
          errb.push(c);
          opts.onStderr?.(c);
        });
        stream.on('exit', (c: number | null, s?: string) => {
          code = c;
          sig = s ?? null;
        });
        stream.on('close', () => {
          if (timer) clearTimeout(timer);
          opts.signal?.removeEventListener('abort', onAbort);
          if (opts.signal?.aborted) return reject(new FluidError('CANCELLED', 'The command was cancelled.'));
          resolve({
            code: timedOut ? null : code,
            signal: sig,
            stdout: out.toBuffer(),
            stderr: errb.toBuffer(),
            truncated: out.dropped + errb.dropped > 0,
            timedOut,
            durationMs: Date.now() - started,
          });
        });
        stream.end(opts.stdin ?? undefined);
      });
    });
  }

  spawn(command: string): HostProcess {
    // The channel opens asynchronously; pipe through PassThroughs so callers can use the streams at once.
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let channel: ClientChannel | null = null;
    let killed = false;
    const exited = new Promise<number | null>((resolve) => {
      if (this.isClosed) return resolve(null);
      this.client.exec(command, (err, ch) => {
        if (err) {
          stderr.end(`could not start: ${err.message}\n`);
          stdout.end();
          return resolve(null);
        }
        channel = ch;
        if (killed) ch.close();
        let code: number | null = null;
        ch.on('exit', (c: number | null) => (code = c));
        ch.on('close', () => {
          stdout.end();
          stderr.end();
          resolve(code);
        });
        ch.pipe(stdout, { end: false });
        ch.stderr.pipe(stderr, { end: false });
        stdin.pipe(ch);
      });
    });
    return {
      stdin,
      stdout,
      stderr,
      exited,
      kill: () => {
        killed = true;
        if (channel) {
          try {
            channel.signal('TERM');
          } catch {
            /* unsupported */
          }
          channel.close();
        }
      },
    };
  }

  forwardOut(address: string, port: number): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      if (this.isClosed)
        return reject(new FluidError('HOST_UNREACHABLE', 'The SSH connection to the host is closed.'));
      try {
        this.client.forwardOut('127.0.0.1', 0, address, port, (err, ch) => {
          if (err)
            reject(
              new FluidError(
                'HOST_UNREACHABLE',
                `The host could not connect to ${address}:${port}: ${err.message}`,
              ),
            );
          else resolve(ch);
        });
      } catch (e) {
        // ssh2 throws synchronously when the connection dropped under us.
        this.markClosed();
        reject(
          new FluidError(
            'HOST_UNREACHABLE',
            `The SSH connection to the host is gone: ${(e as Error).message}`,
          ),
        );
      }
    });
  }

  close(): void {
    this.client.end();
    this.markClosed();
  }
}
