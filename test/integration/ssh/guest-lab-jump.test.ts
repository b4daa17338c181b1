/**
 * Through the lab's libvirt host: SshConnection to the lab sshd (the jump), then GuestSsh through
 * it to this file's CA-trusting sshd on loopback. Needs the lab (`npm run lab`); fails without it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { requireLab, type Lab } from '../../support/lab.ts';
import {
  ensureTestUser,
  localTarget,
  makeCa,
  startCaSshd,
  TEST_USER,
  type CaSshd,
  type TestCa,
} from './harness.ts';
import { SshConnection } from '../../../src/core/hosts/ssh.ts';
import { GuestSsh } from '../../../src/core/ssh/guest.ts';

let lab: Lab;
let sshd: CaSshd;
let t: TestCa;

before(async () => {
  lab = await requireLab();
  ensureTestUser();
  t = makeCa();
  sshd = await startCaSshd({ caPublicKey: t.ca.publicKey(), principals: { [TEST_USER]: [TEST_USER] } });
});

after(async () => {
  await sshd?.stop();
});

test('exec, files and a shell through the lab host as the jump', async () => {
  const host = await SshConnection.open({
    hostId: 'lab',
    address: lab.sshHost,
    port: lab.sshPort,
    user: lab.sshUser,
    auth: { type: 'key', keyPath: lab.keyPath },
    fingerprint: lab.hostKeyFingerprint,
    connectTimeoutMs: 10_000,
  });
  const g = new GuestSsh(localTarget(sshd, { host, key: 'sb-lab-jump' }), { ca: t.ca });
  try {
    const r = await g.exec('id -un; echo "$SSH_CONNECTION" | cut -d" " -f1');
    assert.deepEqual(r.stdout.split('\n').slice(0, 2), [TEST_USER, '127.0.0.1']);
    const data = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    await g.writeFile('/tmp/fluid-lab-jump.bin', data);
    assert.ok((await g.readFile('/tmp/fluid-lab-jump.bin')).equals(data));
    await g.exec('rm -f /tmp/fluid-lab-jump.bin', { root: true });
    const sh = await g.shell({ cols: 90, rows: 20 });
    let out = '';
    sh.onData((c) => (out += c.toString()));
    sh.write('stty size\n');
    const end = Date.now() + 5000;
    while (!/20 90/.test(out) && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
    assert.match(out, /20 90/);
    sh.close();
    const n = 20;
    const started = performance.now();
    for (let i = 0; i < n; i++) await g.exec('true');
    console.log(`# exec through the lab host: ${((performance.now() - started) / n).toFixed(1)} ms per call`);
    assert.equal(g.stats.connects, 1);
  } finally {
    g.close();
    host.close();
  }
});
