/**
 * The runtime step a sandbox gets at every boot and in its identity step (identity.ts,
 * runtimeScript), run by the real /bin/sh against real interfaces in a network namespace: the
 * reserved address lands on the interface that carries the sandbox's MAC, brought up if it was down,
 * and nowhere else; running it again changes nothing and does not fail.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { runtimeScript } from '../../src/core/sandboxes/identity.ts';

const ns = `fl-rt-${randomBytes(3).toString('hex')}`;
const inNs = (...cmd: string[]) => execFileSync('ip', ['netns', 'exec', ns, ...cmd]).toString();

after(() => {
  try {
    execFileSync('ip', ['netns', 'del', ns]);
  } catch {
    /* not made */
  }
});

test('the reserved address goes on the interface with the sandbox MAC, which comes up', () => {
  execFileSync('ip', ['netns', 'add', ns]);
  const mac = '52:54:00:ef:01:02';
  // Two interfaces, both down: the sandbox's NIC (its MAC) and another one.
  inNs('ip', 'link', 'add', 'nic0', 'address', mac, 'type', 'veth', 'peer', 'name', 'peer0');
  inNs('ip', 'link', 'add', 'other0', 'type', 'veth', 'peer', 'name', 'peer1');
  const script = `set -eu\n${runtimeScript({ ip: '10.239.1.2', prefix: 16, mac })}\necho "iface=$IFACE"\n`;
  const run = () => execFileSync('ip', ['netns', 'exec', ns, 'sh', '-s'], { input: script }).toString();

  assert.match(run(), /^iface=nic0$/m);
  const nic = inNs('ip', '-o', 'addr', 'show', 'dev', 'nic0');
  assert.match(nic, /inet 10\.239\.1\.2\/16 /);
  assert.match(inNs('ip', '-o', 'link', 'show', 'dev', 'nic0'), /<[^>]*\bUP\b[^>]*>/, 'brought up');
  assert.doesNotMatch(inNs('ip', '-o', 'addr', 'show', 'dev', 'other0'), /10\.239\./);
  assert.doesNotMatch(inNs('ip', '-o', 'link', 'show', 'dev', 'other0'), /<[^>]*\bUP\b[^>]*>/);

  // Again, on an interface that is up and has the address: no failure, still one address.
  assert.match(run(), /^iface=nic0$/m);
  assert.equal(inNs('ip', '-o', '-4', 'addr', 'show', 'dev', 'nic0').trim().split('\n').length, 1);
});
