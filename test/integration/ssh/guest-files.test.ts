/** Files as root through GuestSsh against a real sshd: binary-safe, capped, atomic, unique edits. */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  ensureTestUser,
  localTarget,
  makeCa,
  startCaSshd,
  TEST_USER,
  type CaSshd,
  type TestCa,
} from './harness.ts';
import { GuestSsh } from '../../../src/core/ssh/guest.ts';
import { FluidError } from '../../../src/shared/errors.ts';

let sshd: CaSshd;
let t: TestCa;
let g: GuestSsh;
const base = `/root/fluid-files-test-${process.pid}`;

before(async () => {
  ensureTestUser();
  t = makeCa();
  sshd = await startCaSshd({ caPublicKey: t.ca.publicKey(), principals: { [TEST_USER]: [TEST_USER] } });
  g = new GuestSsh(localTarget(sshd), { ca: t.ca });
  await g.exec(`rm -rf ${base} && mkdir -m 700 ${base}`, { root: true });
});

after(async () => {
  await g?.exec(`rm -rf ${base}`, { root: true }).catch(() => {});
  g?.close();
  await sshd?.stop();
});

const isCode = (c: string) => (e: unknown) => e instanceof FluidError && e.code === c;
const stat = async (p: string) =>
  (await g.exec(`stat -c '%a %U:%G %s' -- ${p}`, { root: true })).stdout.trim();

describe('files', () => {
  test('a binary file with all 256 byte values (4 MiB) round-trips as root', async () => {
    const pattern = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const data = Buffer.concat([
      pattern,
      randomBytes(4 * 1024 * 1024),
      pattern.reverse(),
      Buffer.from('\r\n\0'),
    ]);
    const path = `${base}/blob.bin`;
    const started = Date.now();
    await g.writeFile(path, data);
    const wrote = Date.now() - started;
    const back = await g.readFile(path);
    const read = Date.now() - started - wrote;
    assert.equal(back.length, data.length);
    assert.ok(back.equals(data), 'identical bytes');
    assert.equal(await stat(path), `644 root:root ${data.length}`);
    // The test user cannot read /root: the read really ran as root.
    assert.notEqual((await g.exec(`cat ${path} >/dev/null`)).exitCode, 0);
    console.log(`# 4 MiB write ${wrote} ms, read ${read} ms`);
  });

  test('readFile: too large says how large; missing is NOT_FOUND; directories are refused', async () => {
    await g.writeFile(`${base}/big`, Buffer.alloc(5000, 'x'));
    await assert.rejects(
      g.readFile(`${base}/big`, { maxBytes: 4096 }),
      (e: unknown) =>
        isCode('VALIDATION')(e) && /is 5000 bytes, more than the 4096-byte limit/.test((e as Error).message),
    );
    assert.equal((await g.readFile(`${base}/big`, { maxBytes: 5000 })).length, 5000);
    await assert.rejects(g.readFile(`${base}/nope`), isCode('NOT_FOUND'));
    await assert.rejects(
      g.readFile(base),
      (e: unknown) => isCode('VALIDATION')(e) && /is a directory/.test((e as Error).message),
    );
    await assert.rejects(g.readFile('relative/path'), isCode('VALIDATION'));
    assert.match((await g.readFile('/etc/shadow')).toString(), /^root:/, 'root-only files are readable');
  });

  test('writeFile: atomic, keeps owner and mode of an existing file, honours mode/owner, no temp files left', async () => {
    const path = `${base}/conf`;
    await g.writeFile(path, 'v1\n', { mode: '0640', owner: `${TEST_USER}:${TEST_USER}` });
    assert.equal(await stat(path), `640 ${TEST_USER}:${TEST_USER} 3`);
    const inode = (await g.exec(`stat -c %i ${path}`, { root: true })).stdout;
    await g.writeFile(path, 'version two\n');
    assert.equal(await stat(path), `640 ${TEST_USER}:${TEST_USER} 12`, 'owner and mode kept');
    assert.notEqual((await g.exec(`stat -c %i ${path}`, { root: true })).stdout, inode, 'replaced by rename');
    assert.equal((await g.readFile(path)).toString(), 'version two\n');
    await g.writeFile(path, '', { mode: '0600' });
    assert.equal(await stat(path), `600 ${TEST_USER}:${TEST_USER} 0`);
    assert.equal(
      (await g.exec(`ls -A ${base} | grep -c fluid-write || true`, { root: true })).stdout.trim(),
      '0',
    );
  });

  test('writeFile: missing parents fail unless createDirs; caps and bad options are refused', async () => {
    await assert.rejects(
      g.writeFile(`${base}/a/b/c.txt`, 'x'),
      (e: unknown) => isCode('NOT_FOUND')(e) && /does not exist.*createDirs/.test((e as Error).message),
    );
    await g.writeFile(`${base}/a/b/c.txt`, 'x', { createDirs: true });
    assert.equal((await g.readFile(`${base}/a/b/c.txt`)).toString(), 'x');
    await assert.rejects(
      g.writeFile(`${base}/cap`, Buffer.alloc(11), { maxBytes: 10 }),
      isCode('VALIDATION'),
    );
    await assert.rejects(g.writeFile(`${base}/m`, 'x', { mode: 'u+x' }), isCode('VALIDATION'));
    await assert.rejects(
      g.writeFile(`${base}/a`, 'x'),
      (e: unknown) => isCode('VALIDATION')(e) && /directory/.test((e as Error).message),
    );
  });

  test('hostile paths are data, not code', async () => {
    const dir = `${base}/we'ird $(touch ${base}/pwned) \`touch ${base}/pwned2\` ;&|<>`;
    const path = `${dir}/fi"le\nname *.txt`;
    await g.writeFile(path, 'safe', { createDirs: true });
    assert.equal((await g.readFile(path)).toString(), 'safe');
    const listing = (await g.exec(`ls -A ${base}`, { root: true })).stdout;
    assert.doesNotMatch(listing, /pwned/);
  });

  test('editFile replaces a unique match; zero is NOT_FOUND, several is CONFLICT with the count', async () => {
    const path = `${base}/nginx.conf`;
    const original = 'server {\n  listen 80;\n  root /var/www;\n}\nserver {\n  listen 80;\n}\n';
    await g.writeFile(path, original, { mode: '0604' });
    assert.deepEqual(await g.editFile(path, '  root /var/www;', '  root /srv/www;'), { line: 3 });
    assert.equal((await g.readFile(path)).toString(), original.replace('/var/www', '/srv/www'));
    assert.equal(await stat(path), `604 root:root ${original.length}`);
    await assert.rejects(
      g.editFile(path, 'listen 443;', 'listen 8443;'),
      (e: unknown) => isCode('NOT_FOUND')(e) && /not found/.test((e as Error).message),
    );
    await assert.rejects(
      g.editFile(path, 'listen 80;', 'listen 8080;'),
      (e: unknown) => isCode('CONFLICT')(e) && /occurs 2 times/.test((e as Error).message),
    );
    await g.editFile(path, 'server {\n  listen 80;\n}', 'server {\n  listen 8080;\n}');
    assert.match((await g.readFile(path)).toString(), /listen 80;\n {2}root \/srv\/www;[\s\S]*listen 8080;/);
    await assert.rejects(g.editFile(`${base}/missing`, 'a', 'b'), isCode('NOT_FOUND'));
  });
});
