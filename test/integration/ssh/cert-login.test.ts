/**
 * Certificates against the real OpenSSH tools: ssh-keygen -L reads them, sshd accepts valid ones
 * (with ssh2 + Fluid's patch, and with the OpenSSH client), and refuses expired, not-yet-valid,
 * wrong-principal, wrong-CA and wrong-source certificates. Host keys are verified before any
 * certificate is issued.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClientChannel } from 'ssh2';
import {
  ensureTestUser,
  keygenList,
  localTarget,
  loginWith,
  makeCa,
  startCaSshd,
  TEST_USER,
  writeKeyFiles,
  type CaSshd,
  type TestCa,
} from './harness.ts';
import { ED25519_CERT, formatKeyLine, signUserCertificate } from '../../../src/core/ssh/cert.ts';
import { CA_SECRET_NAME } from '../../../src/core/ssh/ca.ts';
import { generateEd25519KeyPair } from '../../../src/core/ssh/keys.ts';
import { GuestSsh } from '../../../src/core/ssh/guest.ts';
import { FluidError } from '../../../src/shared/errors.ts';
import type { HostKeyInfo } from '../../../src/core/hosts/ssh.ts';

let sshd: CaSshd;
let t: TestCa;
let dir: string;

before(async () => {
  ensureTestUser();
  t = makeCa();
  sshd = await startCaSshd({
    caPublicKey: t.ca.publicKey(),
    principals: { [TEST_USER]: [TEST_USER, 'sandbox-agent'] },
  });
  dir = mkdtempSync(join(tmpdir(), 'fluid-certs-'));
});

after(async () => {
  await sshd?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const isCode = (c: string) => (e: unknown) => e instanceof FluidError && e.code === c;

/** A certificate signed by the test CA with arbitrary validity, through the low-level encoder. */
function handMade(
  validAfter: number,
  validBefore: number,
  principals = [TEST_USER],
  pair = generateEd25519KeyPair(),
) {
  const caKey = createPrivateKey(t.secrets.get(CA_SECRET_NAME)!);
  const blob = signUserCertificate(
    {
      publicKey: pair.raw,
      serial: 990_001n,
      keyId: 'hand-made',
      principals,
      validAfter,
      validBefore,
    },
    caKey,
  );
  return { privateKey: pair.privateKey, certificate: formatKeyLine(ED25519_CERT, blob, 'hand-made') };
}

const now = () => Math.floor(Date.now() / 1000);

describe('certificates and the real sshd', () => {
  test('ssh-keygen -L shows key id, serial, principals, validity and no forwarding extensions', () => {
    const c = t.ca.issue({
      principals: ['sandbox-agent', TEST_USER],
      validitySeconds: 300,
      keyId: 'fluid:sb-1:guest-exec:agent',
      purpose: 'guest-exec',
      sourceAddress: '127.0.0.1,10.0.0.0/8',
    });
    const key = writeKeyFiles(dir, 'exec', c.privateKey, c.certificate);
    const out = keygenList(`${key}-cert.pub`);
    assert.match(out, /Type: ssh-ed25519-cert-v01@openssh\.com user certificate/);
    assert.match(out, /Key ID: "fluid:sb-1:guest-exec:agent"/);
    assert.match(out, new RegExp(`Serial: ${c.serial}\\n`));
    assert.match(out, /Principals: \n\s+sandbox-agent\n\s+fluid-test\n/);
    assert.match(out, /Critical Options: \n\s+source-address 127\.0\.0\.1,10\.0\.0\.0\/8\n/);
    assert.match(out, /Extensions: \(none\)/);
    const fmt = (d: Date) => d.toISOString().slice(0, 19);
    // ssh-keygen prints local time; the test machine runs in UTC (TZ is forced below).
    const utc = execFileSync('ssh-keygen', ['-L', '-f', `${key}-cert.pub`], {
      env: { ...process.env, TZ: 'UTC' },
    });
    assert.match(utc.toString(), new RegExp(`Valid: from ${fmt(c.validAfter)} to ${fmt(c.validBefore)}`));
    assert.equal(c.validBefore.getTime() - c.validAfter.getTime(), 360_000, '300 s + 60 s backdating');
    assert.match(out, new RegExp(`Signing CA: ED25519 ${t.ca.fingerprint().replace(/[+/]/g, '\\$&')}`));

    const pty = t.ca.issue({
      principals: [TEST_USER],
      validitySeconds: 60,
      keyId: 'k',
      purpose: 'guest-shell',
      permitPty: true,
    });
    const ptyOut = keygenList(`${writeKeyFiles(dir, 'pty', pty.privateKey, pty.certificate)}-cert.pub`);
    assert.match(ptyOut, /Extensions: \n\s+permit-pty\n/);
    for (const o of [out, ptyOut])
      assert.doesNotMatch(o, /permit-(port|agent|X11)-forwarding|permit-user-rc/);
  });

  test('ssh2 (patched) logs in; sshd logs the certificate id and serial', async () => {
    const c = t.ca.issue({
      principals: [TEST_USER],
      validitySeconds: 60,
      keyId: 'fluid:login-test',
      purpose: 'test',
    });
    const client = await loginWith(sshd.port, TEST_USER, c.privateKey, c.certificate);
    const out = await new Promise<string>((resolve, reject) =>
      client.exec('id -un', (err, s) => {
        if (err) return reject(err);
        let o = '';
        s.on('data', (d: Buffer) => (o += d)).on('close', () => resolve(o));
      }),
    );
    client.end();
    assert.equal(out.trim(), TEST_USER);
    assert.match(
      sshd.log(),
      new RegExp(`Accepted certificate ID "fluid:login-test" \\(serial ${c.serial}\\)`),
    );
  });

  test('a key whose public key starts with a zero byte logs in (ssh2 keygen would have broken it)', async () => {
    let pair = generateEd25519KeyPair();
    while (pair.raw[0] !== 0) pair = generateEd25519KeyPair();
    const c = handMade(now() - 60, now() + 60, [TEST_USER], pair);
    (await loginWith(sshd.port, TEST_USER, c.privateKey, c.certificate)).end();
    const key = writeKeyFiles(dir, 'zero', c.privateKey, c.certificate);
    assert.equal(
      execFileSync('ssh-keygen', ['-y', '-f', key]).toString().trim().split(' ')[1],
      pair.publicKey.split(' ')[1],
    );
  });

  test('the OpenSSH client accepts the same certificate', () => {
    const c = t.ca.issue({
      principals: [TEST_USER],
      validitySeconds: 60,
      keyId: 'openssh-client',
      purpose: 'test',
    });
    const key = writeKeyFiles(dir, 'client', c.privateKey, c.certificate);
    const r = spawnSync('ssh', [
      ...['-i', key, '-o', `CertificateFile=${key}-cert.pub`, '-o', 'IdentitiesOnly=yes'],
      ...['-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null'],
      ...['-o', 'LogLevel=ERROR', '-p', String(sshd.port), `${TEST_USER}@127.0.0.1`, 'id -un'],
    ]);
    assert.equal(r.status, 0, r.stderr.toString());
    assert.equal(r.stdout.toString().trim(), TEST_USER);
  });

  test('an expired certificate is refused by sshd', async () => {
    const c = handMade(now() - 3600, now() - 1800);
    await assert.rejects(
      loginWith(sshd.port, TEST_USER, c.privateKey, c.certificate),
      /authentication methods failed/,
    );
    assert.match(sshd.log(), /Certificate invalid: expired/);
  });

  test('a certificate that is not valid yet is refused', async () => {
    const c = handMade(now() + 1800, now() + 3600);
    await assert.rejects(
      loginWith(sshd.port, TEST_USER, c.privateKey, c.certificate),
      /authentication methods failed/,
    );
    assert.match(sshd.log(), /Certificate invalid: not yet valid/);
  });

  test('a certificate without an accepted principal is refused', async () => {
    const c = t.ca.issue({
      principals: ['someone-else'],
      validitySeconds: 60,
      keyId: 'wrong',
      purpose: 'test',
    });
    await assert.rejects(
      loginWith(sshd.port, TEST_USER, c.privateKey, c.certificate),
      /authentication methods failed/,
    );
    // Through GuestSsh the refusal is AUTH_FAILED with a message that says what to check.
    const g = new GuestSsh(localTarget(sshd, { principal: 'someone-else' }), { ca: t.ca });
    await assert.rejects(
      g.exec('true'),
      (e: unknown) => isCode('AUTH_FAILED')(e) && /principal someone-else/.test((e as Error).message),
    );
    g.close();
  });

  test('a certificate from another CA is refused', async () => {
    const other = makeCa();
    const c = other.ca.issue({
      principals: [TEST_USER],
      validitySeconds: 60,
      keyId: 'other-ca',
      purpose: 'test',
    });
    await assert.rejects(
      loginWith(sshd.port, TEST_USER, c.privateKey, c.certificate),
      /authentication methods failed/,
    );
  });

  test('source-address is enforced', async () => {
    const far = t.ca.issue({
      principals: [TEST_USER],
      validitySeconds: 60,
      keyId: 'far',
      purpose: 'test',
      sourceAddress: '10.9.9.9',
    });
    await assert.rejects(loginWith(sshd.port, TEST_USER, far.privateKey, far.certificate));
    const near = t.ca.issue({
      principals: [TEST_USER],
      validitySeconds: 60,
      keyId: 'near',
      purpose: 'test',
      sourceAddress: '127.0.0.1/32',
    });
    (await loginWith(sshd.port, TEST_USER, near.privateKey, near.certificate)).end();
  });

  test('certificates grant no port forwarding, and a PTY only with permit-pty', async () => {
    const plain = t.ca.issue({
      principals: [TEST_USER],
      validitySeconds: 60,
      keyId: 'plain',
      purpose: 'test',
    });
    const c1 = await loginWith(sshd.port, TEST_USER, plain.privateKey, plain.certificate);
    await assert.rejects(
      new Promise((resolve, reject) =>
        c1.forwardOut('127.0.0.1', 0, '127.0.0.1', sshd.port, (e, ch) => (e ? reject(e) : resolve(ch))),
      ),
      /prohibited|denied|failed/i,
    );
    await assert.rejects(
      new Promise((resolve, reject) => c1.shell({ term: 'xterm' }, (e, ch) => (e ? reject(e) : resolve(ch)))),
      /pseudo-terminal/i,
    );
    c1.end();
    const pty = t.ca.issue({
      principals: [TEST_USER],
      validitySeconds: 60,
      keyId: 'pty',
      purpose: 'test',
      permitPty: true,
    });
    const c2 = await loginWith(sshd.port, TEST_USER, pty.privateKey, pty.certificate);
    const ch = await new Promise<ClientChannel>((resolve, reject) =>
      c2.shell({ term: 'xterm' }, (e, s) => (e ? reject(e) : resolve(s))),
    );
    ch.close();
    c2.end();
  });
});

describe('host keys', () => {
  test('a different host key is HOSTKEY_MISMATCH, and no certificate is issued for it', async () => {
    const before = (t.db.prepare('SELECT COUNT(*) AS n FROM ssh_certificates').get() as { n: number }).n;
    const wrong = 'SHA256:' + Buffer.alloc(32, 7).toString('base64').replace(/=+$/, '');
    const g = new GuestSsh(localTarget(sshd, { hostKey: { fingerprint: wrong } }), { ca: t.ca });
    await assert.rejects(g.exec('true'), (e: unknown) => {
      assert.ok(isCode('HOSTKEY_MISMATCH')(e), String(e));
      const err = e as FluidError;
      assert.match(err.message, new RegExp(sshd.hostKeyFingerprint.replace(/[+/]/g, '\\$&')));
      assert.deepEqual((err.data as { presented: string }).presented, sshd.hostKeyFingerprint);
      return true;
    });
    const afterCount = (t.db.prepare('SELECT COUNT(*) AS n FROM ssh_certificates').get() as { n: number }).n;
    assert.equal(afterCount, before, 'no certificate for a host that failed verification');
    g.close();
  });

  test('trust on first use: the callback sees the key; yes pins it, no refuses', async () => {
    const seen: HostKeyInfo[] = [];
    const yes = new GuestSsh(
      localTarget(sshd, { hostKey: { trustOnFirstUse: async (k) => (seen.push(k), true) } }),
      { ca: t.ca },
    );
    assert.equal((await yes.exec('echo ok')).stdout, 'ok\n');
    assert.deepEqual(seen, [{ type: 'ssh-ed25519', fingerprint: sshd.hostKeyFingerprint }]);
    assert.deepEqual(yes.trustedFingerprints, [sshd.hostKeyFingerprint]);
    yes.disconnect();
    await yes.exec('true');
    assert.equal(seen.length, 1, 'asked once, pinned afterwards');
    yes.close();

    const no = new GuestSsh(localTarget(sshd, { hostKey: { trustOnFirstUse: () => false } }), { ca: t.ca });
    await assert.rejects(no.exec('true'), isCode('DENIED'));
    no.close();
  });

  test('several recorded fingerprints: any of them is accepted', async () => {
    const other = 'SHA256:' + Buffer.alloc(32, 1).toString('base64').replace(/=+$/, '');
    const g = new GuestSsh(
      localTarget(sshd, { hostKey: { fingerprint: [other, sshd.hostKeyFingerprint] } }),
      {
        ca: t.ca,
      },
    );
    assert.equal((await g.exec('true')).exitCode, 0);
    g.close();
    assert.throws(
      () => new GuestSsh(localTarget(sshd, { hostKey: { fingerprint: 'md5:xx' } }), { ca: t.ca }),
      /SHA256/,
    );
  });
});
