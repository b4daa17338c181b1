import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  buildSaveHeader,
  parseSaveHeader,
  rewriteDomainXml,
  SAVE_MAGIC,
} from '../../../src/core/sandboxes/save-image.ts';
import { restoreFromTemplate } from '../../../src/core/sandboxes/templates.ts';
import type { ExecOptions, ExecResult, HostConnection } from '../../../src/core/hosts/connection.ts';
import type { Host } from '../../../src/shared/contract/hosts.ts';
import type { TemplateInfo } from '../../../src/core/sandboxes/bases.ts';
import { networkXml, slotFromIp, slotIp, slotMac, SLOT_COUNT } from '../../../src/core/sandboxes/network.ts';
import {
  generateHostKeys,
  hostnameSection,
  identityScript,
  parseIdentityOutput,
  runtimeScript,
  templateTrustScript,
  HOSTKEY_MARK,
} from '../../../src/core/sandboxes/identity.ts';
import { tempDir } from '../../support/core.ts';

function fakeSave(xml: string, cookie: string, stream: Buffer): Buffer {
  const data = Buffer.concat([Buffer.from(xml + '\0'), Buffer.from(cookie + '\0'), Buffer.alloc(100)]);
  const h = Buffer.alloc(92);
  h.write(SAVE_MAGIC, 0, 'latin1');
  h.writeUInt32LE(2, 16);
  h.writeUInt32LE(data.length, 20);
  h.writeUInt32LE(1, 24);
  h.writeUInt32LE(0, 28);
  h.writeUInt32LE(xml.length + 1, 32);
  return Buffer.concat([h, data, stream]);
}

test('save image headers round-trip with a rewritten identity and the QEMU stream untouched', () => {
  const xml =
    "<domain><name>tmpl</name><uuid>u-1</uuid><genid>g-1</genid><source file='/t/vda.qcow2'/><log file='/t/serial.log'/></domain>";
  const stream = Buffer.from('QEVM' + 'x'.repeat(1000));
  const file = fakeSave(xml, '<cookie/>', stream);
  const h = parseSaveHeader(file);
  assert.equal(h.xml, xml);
  assert.equal(h.cookie.toString(), '<cookie/>');
  assert.ok(file.subarray(h.streamOffset).equals(stream));
  const x2 = rewriteDomainXml(h.xml, {
    name: 'sbx',
    uuid: 'u-2',
    genid: 'g-2',
    replace: [
      ['/t/vda.qcow2', '/s/vda.qcow2'],
      ['/t/serial.log', '/s/serial.log'],
    ],
  });
  assert.equal(
    x2,
    "<domain><name>sbx</name><uuid>u-2</uuid><genid>g-2</genid><source file='/s/vda.qcow2'/><log file='/s/serial.log'/></domain>",
  );
  const nh = buildSaveHeader(h, x2);
  const rebuilt = parseSaveHeader(Buffer.concat([nh, stream]));
  assert.equal(rebuilt.xml, x2);
  assert.equal(rebuilt.cookie.toString(), '<cookie/>');
  assert.equal(rebuilt.wasRunning, 1);
  assert.throws(() => parseSaveHeader(Buffer.from('not a save image'.padEnd(100))), /not an uncompressed/);
});

test('slots map to unique MACs and IPs inside the sandbox subnet, both ways', () => {
  const ips = new Set<string>();
  const macs = new Set<string>();
  for (let s = 1; s <= SLOT_COUNT; s++) {
    const ip = slotIp(s);
    assert.match(ip, /^10\.239\.\d+\.\d+$/);
    const [, , c, d] = ip.split('.').map(Number);
    assert.ok(c! >= 1 && d! >= 2 && d! <= 251, ip);
    assert.equal(slotFromIp(ip), s);
    ips.add(ip);
    macs.add(slotMac(s));
  }
  assert.equal(ips.size, SLOT_COUNT);
  assert.equal(macs.size, SLOT_COUNT);
  assert.equal(slotFromIp('10.239.0.1'), null);
  assert.throws(() => slotIp(0));
  const net = networkXml();
  assert.doesNotMatch(net, /<forward/);
  assert.match(net, /<dns enable='no'\/>/);
  assert.match(net, /<port isolated='yes'\/>/);
  assert.equal((net.match(/<host mac=/g) ?? []).length, SLOT_COUNT);
});

test('the hostname section, run against scratch files, replaces only the 127.0.1.1 line', () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = (n: string) => join(dir, n);
    const section = hostnameSection()
      .replaceAll('/proc/sys/kernel/hostname', f('kernel'))
      .replaceAll('/etc/hostname', f('hostname'))
      .replaceAll('/etc/hosts', f('hosts'));
    const run = () => execFileSync('sh', ['-eu'], { input: `HN=sbx-b\n${section}\n` });
    // The template's line, tabs, comments and a last line without its newline are all kept but one.
    writeFileSync(
      f('hosts'),
      '127.0.0.1\tlocalhost\n127.0.1.1\tweb-base\n# 127.0.1.1 in a comment\n\n::1 localhost ip6-localhost\n127.0.1.10 other',
    );
    run();
    const want =
      '127.0.0.1\tlocalhost\n# 127.0.1.1 in a comment\n\n::1 localhost ip6-localhost\n127.0.1.10 other\n127.0.1.1\tsbx-b\n';
    assert.equal(readFileSync(f('hosts'), 'utf8'), want);
    assert.equal(readFileSync(f('hostname'), 'utf8'), 'sbx-b\n');
    assert.equal(readFileSync(f('kernel'), 'utf8'), 'sbx-b');
    run();
    assert.equal(readFileSync(f('hosts'), 'utf8'), want, 'idempotent');
    // A guest without /etc/hosts gets the one line.
    execFileSync('rm', [f('hosts')]);
    run();
    assert.equal(readFileSync(f('hosts'), 'utf8'), '127.0.1.1\tsbx-b\n');
  } finally {
    cleanup();
  }
});

test('the identity, runtime and template scripts are valid POSIX sh and carry what they promise', async () => {
  const keys = await generateHostKeys('sbx-a');
  const ca = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ4kExample fluid-ca';
  const script = identityScript({
    hostname: 'sbx-a',
    caPublicKey: ca,
    ip: '10.239.1.2',
    prefix: 16,
    mac: '52:54:00:ef:00:01',
    gateway: '10.239.0.1',
    proxySetup: 'echo proxy',
    hostKeys: keys,
    includeTrust: true,
    principal: 'fluid-sbx-a',
  });
  for (const s of [
    script,
    runtimeScript({ ip: '10.239.1.2', prefix: 16, mac: '52:54:00:ef:00:01' }),
    templateTrustScript(ca),
  ]) {
    execFileSync('sh', ['-n'], { input: s });
  }
  assert.ok(script.includes(keys.ed25519.private.trim()));
  assert.ok(script.includes('echo proxy'), 'a cold clone gets the proxy settings with its trust');
  assert.ok(script.includes(keys.rsa.public.trim()));
  assert.ok(script.includes('TrustedUserCAKeys'));
  assert.match(
    script,
    /\/proc\/sys\/kernel\/random\/uuid/,
    'machine-id is random, not derived from the VM UUID',
  );
  assert.ok(
    !identityScript({
      hostname: 'sbx-a',
      caPublicKey: ca,
      ip: '10.239.1.2',
      prefix: 16,
      mac: '52:54:00:ef:00:01',
      gateway: '10.239.0.1',
      proxySetup: '',
      hostKeys: keys,
      includeTrust: false,
      principal: 'fluid-sbx-a',
    }).includes('TrustedUserCAKeys'),
  );
  assert.throws(
    () =>
      identityScript({
        hostname: 'Bad Name',
        caPublicKey: ca,
        ip: '1.2.3.4',
        prefix: 16,
        mac: '52:54:00:ef:00:01',
        gateway: 'x',
        proxySetup: '',
        hostKeys: keys,
        includeTrust: true,
        principal: 'fluid-sbx-a',
      }),
    /hostname/,
  );
  const out = parseIdentityOutput(`noise\n${HOSTKEY_MARK}\n${keys.ed25519.public}\niface=enp1s0\nabc123\n`);
  assert.equal(out.hostKey, keys.ed25519.public.trim());
  assert.equal(out.iface, 'enp1s0');
});

test('a cancelled restore lets the host finish `virsh restore`, then says CANCELLED (no VM left that nobody owns)', async () => {
  const xml = "<domain><name>tmpl</name><uuid>u-1</uuid><genid>g-1</genid><fluid:template x='1'/></domain>";
  const image = fakeSave(xml, '<cookie/>', Buffer.from('QEVM'));
  // A connection that behaves like a real one: a command given a signal is killed when it aborts.
  let finishRestore: (() => void) | null = null;
  const seen: Array<{ restore: boolean; killed: boolean; finished: boolean }> = [];
  const conn = {
    hostId: 'h',
    kind: 'ssh',
    closed: false,
    exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
      if (command.startsWith('head -c'))
        return Promise.resolve({
          code: 0,
          stdout: Buffer.from(image.toString('base64')),
          stderr: Buffer.alloc(0),
        } as ExecResult);
      const call = { restore: command.includes('restore'), killed: false, finished: false };
      seen.push(call);
      return new Promise((resolve, reject) => {
        opts.signal?.addEventListener('abort', () => {
          call.killed = true;
          reject(new Error('killed'));
        });
        finishRestore = () => {
          call.finished = true;
          resolve({ code: 0, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) } as ExecResult);
        };
      });
    },
  } as unknown as HostConnection;
  const host = { libvirtUri: 'qemu:///system' } as Host;
  const t = { save: '/t/memory.save', serialLog: '/t/serial.log' } as TemplateInfo;
  const ac = new AbortController();
  const restoring = restoreFromTemplate(
    conn,
    host,
    t,
    {
      name: 'sbx',
      uuid: 'u-2',
      genid: 'g-2',
      dir: '/s',
      disks: [['/t/vda.qcow2', '/s/vda.qcow2']],
      serialLog: '/s/serial.log',
      label: { id: 'id', installation: 'inst', source: 'web', base: 'b' },
    },
    ac.signal,
  );
  await new Promise((r) => setImmediate(r));
  assert.equal(seen.length, 1, 'the restore command was sent');
  ac.abort();
  await new Promise((r) => setImmediate(r));
  assert.equal(seen[0]!.killed, false, 'the cancel does not cut the restore off midway');
  finishRestore!();
  await assert.rejects(restoring, (e: { code: string }) => e.code === 'CANCELLED');
  assert.deepEqual(seen[0], { restore: true, killed: false, finished: true });
});
