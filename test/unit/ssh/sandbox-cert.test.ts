/**
 * Sandbox login certificates are scoped: one principal per sandbox, and source-address set to the
 * gateway Fluid connects from. Checked on the certificate itself with OpenSSH's ssh-keygen -L, and on
 * the scripts that make a clone's sshd accept that principal alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  generateHostKeys,
  identityScript,
  principalSection,
  ROOT_LOGIN_CONF,
  rootLoginSection,
  sandboxLogin,
  sandboxPrincipal,
  templateTrustScript,
} from '../../../src/core/sandboxes/identity.ts';
import { GATEWAY } from '../../../src/core/sandboxes/network.ts';
import { tempDir } from '../../support/core.ts';
import { makeTestCa } from './helpers.ts';

const ID_A = '4f0c2a6e-1b7d-4c1e-9a55-0d2f8e7b6c01';
const ID_B = '9b1e7d22-3c4a-4f0b-8e6d-7a5c2b1f0e92';

test('a sandbox login names its own principal and the gateway as the only source', () => {
  const a = sandboxLogin(ID_A, GATEWAY);
  assert.deepEqual(a, { user: 'fluid', principal: `fluid-${ID_A}`, sourceAddress: `${GATEWAY}/32` });
  assert.notEqual(sandboxLogin(ID_B, GATEWAY).principal, a.principal);
  assert.throws(() => sandboxPrincipal('a b'), /invalid sandbox id/);
  assert.throws(() => sandboxPrincipal('x"\nfluid'), /invalid sandbox id/);
  assert.throws(() => sandboxLogin(ID_A, '0.0.0.0/0'), /invalid source address/);
});

test('ssh-keygen -L shows the per-sandbox principal and the source-address critical option', () => {
  const { ca, db } = makeTestCa();
  const { dir, cleanup } = tempDir();
  try {
    const login = sandboxLogin(ID_A, GATEWAY);
    const c = ca.issue({
      principals: [login.principal],
      sourceAddress: login.sourceAddress,
      validitySeconds: 120,
      keyId: `fluid:${ID_A}:guest-exec`,
      purpose: 'guest-exec',
      sandboxId: ID_A,
    });
    const file = join(dir, 'id-cert.pub');
    writeFileSync(file, c.certificate + '\n');
    const out = execFileSync('ssh-keygen', ['-L', '-f', file]).toString();
    assert.match(out, /Type: ssh-ed25519-cert-v01@openssh\.com user certificate/);
    assert.match(out, new RegExp(`Principals: \\n\\s+fluid-${ID_A}\\n\\s+Critical Options:`));
    assert.doesNotMatch(out, /^\s+fluid\s*$/m, 'not the shared principal');
    assert.match(out, /Critical Options: \n\s+source-address 10\.239\.0\.1\/32\n/);
    assert.match(out, /Extensions: \(none\)/);
    const row = db
      .prepare('SELECT principals, source_address FROM ssh_certificates WHERE serial = ?')
      .get(c.serial) as {
      principals: string;
      source_address: string;
    };
    assert.deepEqual(JSON.parse(row.principals), [`fluid-${ID_A}`]);
    assert.equal(row.source_address, `${GATEWAY}/32`);
  } finally {
    db.close();
    cleanup();
  }
});

test('the template accepts no principal; each clone writes its own, from the gateway only', async () => {
  const ca = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ4kExample fluid-ca';
  const template = templateTrustScript(ca);
  assert.match(template, /^: > \/etc\/ssh\/fluid\/principals_fluid$/m, 'the principals file starts empty');
  assert.doesNotMatch(template, /printf '%s\\n' fluid /);
  assert.doesNotMatch(template, /fluid-[0-9a-f]{8}/);

  const keys = await generateHostKeys('sbx-a');
  const base = {
    hostname: 'sbx-a',
    caPublicKey: ca,
    ip: '10.239.1.2',
    prefix: 16,
    mac: '52:54:00:ef:00:01',
    gateway: GATEWAY,
    proxySetup: '',
    hostKeys: keys,
    principal: sandboxPrincipal(ID_A),
  };
  for (const includeTrust of [true, false]) {
    const script = identityScript({ ...base, includeTrust });
    execFileSync('sh', ['-n'], { input: script });
    const line = `printf '%s\\n' 'from="${GATEWAY}" fluid-${ID_A}' > /etc/ssh/fluid/principals_$u\n`;
    assert.ok(script.includes(line), `the clone's principal line (includeTrust=${includeTrust})`);
    assert.ok(script.includes('for u in fluid root; do'), 'for Fluid’s user and for root');
    assert.ok(script.includes(ROOT_LOGIN_CONF), 'root logins are allowed in a drop-in of their own');
    // On a cold clone the trust section empties the file first; the principal is written after it.
    if (includeTrust) assert.ok(script.indexOf(': > /etc/ssh/fluid/principals_fluid') < script.indexOf(line));
    assert.ok(!script.includes(ID_B));
    assert.ok(!script.includes('date -u -s'), 'no clock without the time');
    const timed = identityScript({ ...base, includeTrust, nowMs: 1_800_000_000_123 });
    execFileSync('sh', ['-n'], { input: timed });
    // First, before anything a certificate check could depend on.
    const clock = timed.indexOf('date -u -s @1800000000.123 ');
    assert.ok(clock >= 0 && clock < timed.indexOf('principals_'), 'the clock is set first');
  }
  assert.throws(() => principalSection('fluid', GATEWAY), /invalid principal/);
  assert.throws(() => principalSection(`fluid-${ID_A}' x`, GATEWAY), /invalid principal/);
  assert.throws(() => principalSection(`fluid-${ID_A}`, '10.239.0.1"'), /invalid source address/);
});

test('the principal section, run against a scratch root, leaves exactly one principal line', () => {
  const { dir, cleanup } = tempDir();
  try {
    const root = join(dir, 'etc-ssh-fluid');
    const section = principalSection(`fluid-${ID_B}`, GATEWAY).replaceAll('/etc/ssh/fluid', root);
    // An earlier principal (a template built by an older version had "fluid") is replaced.
    execFileSync('sh', ['-c', `mkdir -p ${root} && printf 'fluid\\n' > ${root}/principals_fluid`]);
    execFileSync('sh', ['-eu'], { input: section });
    for (const user of ['fluid', 'root'])
      assert.equal(
        readFileSync(join(root, `principals_${user}`), 'utf8'),
        `from="${GATEWAY}" fluid-${ID_B}\n`,
      );
  } finally {
    cleanup();
  }
});

test('root logs in from the gateway alone, whatever the image says, and only with an sshd_config.d include', () => {
  const { dir, cleanup } = tempDir();
  try {
    const dropins = join(dir, 'sshd_config.d');
    const main = join(dir, 'sshd_config');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'hostkey')]);
    // An image that forbids root logins, with settings after its include that must stay global.
    const image = (include: boolean) =>
      `${include ? `Include ${dropins}/*.conf\n` : ''}HostKey ${join(dir, 'hostkey')}\nPermitRootLogin no\nX11Forwarding yes\n`;
    const section = rootLoginSection(GATEWAY)
      .replaceAll('/etc/ssh/sshd_config.d', dropins)
      .replaceAll('/etc/ssh/sshd_config', main);
    const effective = (user: string, addr: string) =>
      Object.fromEntries(
        execFileSync('/usr/sbin/sshd', [
          '-T',
          '-f',
          main,
          '-C',
          `user=${user},addr=${addr},host=h,laddr=${GATEWAY},lport=22`,
        ])
          .toString()
          .split('\n')
          .map((l) => l.split(' '))
          .filter(([k]) => k === 'permitrootlogin' || k === 'x11forwarding')
          .map(([k, v]) => [k, v]),
      );

    writeFileSync(main, image(true));
    execFileSync('mkdir', ['-p', dropins]);
    execFileSync('sh', ['-eu'], { input: section });
    execFileSync('sh', ['-eu'], { input: section }); // idempotent
    assert.equal(readFileSync(main, 'utf8'), image(true), "the image's sshd_config is not touched");
    assert.deepEqual(effective('root', GATEWAY), {
      permitrootlogin: 'without-password',
      x11forwarding: 'yes',
    });
    assert.deepEqual(effective('root', '10.239.0.9'), { permitrootlogin: 'no', x11forwarding: 'yes' });
    assert.deepEqual(effective('fluid', GATEWAY), { permitrootlogin: 'no', x11forwarding: 'yes' });

    // Without the include, nothing is written: root stays out and Fluid uses sudo.
    execFileSync('rm', ['-rf', dropins]);
    writeFileSync(main, image(false));
    execFileSync('mkdir', ['-p', dropins]);
    execFileSync('sh', ['-eu'], { input: section });
    assert.deepEqual(readdirSync(dropins), []);
    assert.deepEqual(effective('root', GATEWAY), { permitrootlogin: 'no', x11forwarding: 'yes' });
    assert.throws(() => rootLoginSection('10.239.0.1/0'), /invalid source address/);
  } finally {
    cleanup();
  }
});
