/**
 * TLS for a network bind: a certificate the person supplies, or one Fluid generates (self-signed,
 * ECDSA P-256, with the bind address and the machine's name as subject alternative names) and keeps in
 * the data dir (key 0600) for the next start. Its SHA-256 fingerprint is printed, for clients to pin.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { FluidError } from '../../../shared/errors.ts';

export interface TlsMaterial {
  cert: string;
  key: string;
  /** SHA-256 fingerprint of the certificate (AA:BB:…). */
  fingerprint: string;
  generated: boolean;
  certPath: string;
}

export function loadTls(certPath: string, keyPath: string): TlsMaterial {
  for (const p of [certPath, keyPath])
    if (!existsSync(p)) throw new FluidError('NOT_FOUND', `The TLS file ${p} does not exist.`);
  const cert = readFileSync(certPath, 'utf8');
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (e) {
    throw new FluidError('VALIDATION', `${certPath} is not a PEM certificate: ${(e as Error).message}`);
  }
  return {
    cert,
    key: readFileSync(keyPath, 'utf8'),
    fingerprint: x509.fingerprint256,
    generated: false,
    certPath,
  };
}

/** The certificate Fluid made for this address earlier, or a new one (needs the openssl command). */
export function generatedTls(dataDir: string, address: string): TlsMaterial {
  const dir = join(dataDir, 'tls');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const safe = address.replace(/[^A-Za-z0-9.-]/g, '_');
  const certPath = join(dir, `api-${safe}.crt`);
  const keyPath = join(dir, `api-${safe}.key`);
  if (existsSync(certPath) && existsSync(keyPath)) {
    const t = loadTls(certPath, keyPath);
    const x = new X509Certificate(t.cert);
    if (Date.parse(x.validTo) > Date.now() + 7 * 24 * 3600_000) return { ...t, generated: true };
  }
  const names = new Set<string>(['DNS:localhost', 'IP:127.0.0.1']);
  if (isIP(address) && address !== '0.0.0.0' && address !== '::') names.add(`IP:${address}`);
  else if (!isIP(address)) names.add(`DNS:${address}`);
  names.add(`DNS:${hostname()}`);
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '397',
        '-subj',
        '/CN=Fluid HTTP API',
        '-addext',
        `subjectAltName=${[...names].join(',')}`,
        '-keyout',
        keyPath,
        '-out',
        certPath,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
  } catch (e) {
    throw new FluidError(
      'UNAVAILABLE',
      `Could not generate a certificate with openssl (${(e as Error).message.split('\n')[0]}). Install openssl, or pass --tls-cert and --tls-key.`,
    );
  }
  chmodSync(keyPath, 0o600);
  return { ...loadTls(certPath, keyPath), generated: true };
}
