/** File scripts run with the local bash (as the sandbox would run them under sudo), and edit logic. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  applyEdit,
  FILE_EXIT,
  lineAt,
  occurrences,
  readScript,
  sha256Hex,
  validatePath,
  writeScript,
} from '../../../src/core/ssh/files.ts';
import { FluidError } from '../../../src/shared/errors.ts';

const runBash = (script: string, input?: Buffer, cwd?: string) =>
  spawnSync('bash', ['-c', script], { input: input ?? Buffer.alloc(0), maxBuffer: 64 * 1024 * 1024, cwd });

function withDir(fn: (dir: string) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'fluid-files-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const code = (c: string) => (e: unknown) => e instanceof FluidError && e.code === c;

describe('file scripts', () => {
  test('paths must be absolute, without NUL', () => {
    assert.throws(() => validatePath('etc/passwd'), code('VALIDATION'));
    assert.throws(() => validatePath(''), code('VALIDATION'));
    assert.throws(() => validatePath('/a\0b'), code('VALIDATION'));
    assert.doesNotThrow(() => validatePath('/a b/$(x)/\'q\'/"d"/`e`\nnewline'));
  });

  test('hostile file names are data, not code', () => {
    withDir((dir) => {
      const name = join(dir, `it's "$(touch pwned)" \`touch pwned2\` $HOME;\nline2`);
      const data = Buffer.from('content');
      const w = runBash(writeScript(name, data.length), data, dir);
      assert.equal(w.status, 0, w.stderr.toString());
      assert.deepEqual(readFileSync(name), data);
      const r = runBash(readScript(name, 100), undefined, dir);
      assert.equal(r.status, 0);
      assert.equal(r.stdout.toString(), 'content');
      assert.deepEqual(readdirSync(dir).sort(), [name.slice(dir.length + 1)]);
    });
  });

  test('read: bytes, size on stderr, max+1 bytes at most, not found, directory', () => {
    withDir((dir) => {
      const f = join(dir, 'bin');
      const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      writeFileSync(f, bytes);
      const r = runBash(readScript(f, 1000));
      assert.equal(r.status, 0);
      assert.deepEqual(r.stdout, bytes);
      assert.match(r.stderr.toString(), /size=256/);
      const capped = runBash(readScript(f, 10));
      assert.equal(capped.stdout.length, 11);
      assert.equal(runBash(readScript(join(dir, 'nope'), 10)).status, FILE_EXIT.notFound);
      assert.equal(runBash(readScript(dir, 10)).status, FILE_EXIT.isDirectory);
    });
  });

  test('write: atomic replace keeps mode, leaves no temp file; new files get 0644', () => {
    withDir((dir) => {
      const f = join(dir, 'conf');
      writeFileSync(f, 'old');
      chmodSync(f, 0o640);
      const data = Buffer.from('new content\n');
      const r = runBash(writeScript(f, data.length), data);
      assert.equal(r.status, 0, r.stderr.toString());
      assert.deepEqual(readFileSync(f), data);
      assert.equal(statSync(f).mode & 0o777, 0o640);
      const g = join(dir, 'fresh');
      assert.equal(runBash(writeScript(g, 1), Buffer.from('x')).status, 0);
      assert.equal(statSync(g).mode & 0o777, 0o644);
      assert.equal(runBash(writeScript(g, 1, { mode: '0600' }), Buffer.from('y')).status, 0);
      assert.equal(statSync(g).mode & 0o777, 0o600);
      assert.deepEqual(readdirSync(dir).sort(), ['conf', 'fresh']);
    });
  });

  test('write: refuses short data, missing parents (unless asked), directories, and stale content', () => {
    withDir((dir) => {
      const f = join(dir, 'f');
      writeFileSync(f, 'v1');
      const short = runBash(writeScript(f, 10), Buffer.from('abc'));
      assert.equal(short.status, FILE_EXIT.short);
      assert.equal(readFileSync(f, 'utf8'), 'v1', 'untouched');
      assert.deepEqual(readdirSync(dir), ['f'], 'temp file removed');
      const deep = join(dir, 'a', 'b', 'c.txt');
      assert.equal(runBash(writeScript(deep, 1), Buffer.from('x')).status, FILE_EXIT.noParent);
      assert.equal(runBash(writeScript(deep, 1, { createDirs: true }), Buffer.from('x')).status, 0);
      assert.equal(statSync(join(dir, 'a')).mode & 0o777, 0o755);
      assert.equal(runBash(writeScript(join(dir, 'a'), 1), Buffer.from('x')).status, FILE_EXIT.isDirectory);
      const stale = runBash(
        writeScript(f, 2, { expectSha256: sha256Hex(Buffer.from('v0')) }),
        Buffer.from('v2'),
      );
      assert.equal(stale.status, FILE_EXIT.changed);
      const fresh = runBash(
        writeScript(f, 2, { expectSha256: sha256Hex(Buffer.from('v1')) }),
        Buffer.from('v2'),
      );
      assert.equal(fresh.status, 0);
      assert.equal(readFileSync(f, 'utf8'), 'v2');
    });
  });

  test('write: a symlink is followed, the link stays', () => {
    withDir((dir) => {
      mkdirSync(join(dir, 'real'));
      writeFileSync(join(dir, 'real', 'target'), 'old');
      symlinkSync(join(dir, 'real', 'target'), join(dir, 'link'));
      assert.equal(runBash(writeScript(join(dir, 'link'), 3), Buffer.from('new')).status, 0);
      assert.equal(readFileSync(join(dir, 'real', 'target'), 'utf8'), 'new');
      assert.equal(statSync(join(dir, 'link'), { throwIfNoEntry: true }).isFile(), true);
      assert.ok(readdirSync(dir).includes('link'));
    });
  });

  test('write: option validation', () => {
    assert.throws(() => writeScript('/x', 1, { mode: '999' }), code('VALIDATION'));
    assert.throws(() => writeScript('/x', 1, { mode: '0644; rm -rf /' }), code('VALIDATION'));
    assert.throws(() => writeScript('/x', 1, { owner: 'root; id' }), code('VALIDATION'));
    assert.throws(() => writeScript('/x', 1, { expectSha256: 'abc' }), code('VALIDATION'));
    assert.doesNotThrow(() => writeScript('/x', 1, { mode: '0755', owner: 'www-data:www-data' }));
  });
});

describe('edits', () => {
  const text = Buffer.from('alpha\nbeta\ngamma\nbeta\n');

  test('replaces a unique occurrence and says where', () => {
    const r = applyEdit('/f', text, 'gamma', 'GAMMA\nmore');
    assert.equal(r.content.toString(), 'alpha\nbeta\nGAMMA\nmore\nbeta\n');
    assert.equal(r.line, 3);
  });

  test('zero matches is NOT_FOUND, several is CONFLICT with the count', () => {
    assert.throws(
      () => applyEdit('/f', text, 'delta', 'x'),
      (e: unknown) => code('NOT_FOUND')(e) && /not found in \/f/.test((e as Error).message),
    );
    assert.throws(
      () => applyEdit('/f', text, 'beta', 'x'),
      (e: unknown) =>
        code('CONFLICT')(e) &&
        /occurs 2 times in \/f \(lines 2, 4\)/.test((e as Error).message) &&
        (e as FluidError).data !== undefined,
    );
    assert.equal(applyEdit('/f', text, 'beta\ngamma', 'x').line, 2, 'more context makes it unique');
  });

  test('empty or no-op edits are refused', () => {
    assert.throws(() => applyEdit('/f', text, '', 'x'), code('VALIDATION'));
    assert.throws(() => applyEdit('/f', text, 'alpha', 'alpha'), code('VALIDATION'));
  });

  test('bytes, not characters: binary files and multibyte text', () => {
    const bin = Buffer.concat([Buffer.from([0, 255, 1]), Buffer.from('ünï'), Buffer.from([0])]);
    const r = applyEdit('/b', bin, 'ünï', 'x');
    assert.deepEqual(r.content, Buffer.from([0, 255, 1, 0x78, 0]));
    assert.deepEqual(occurrences(Buffer.from('aaaa'), Buffer.from('aa')), [0, 2]);
    assert.equal(lineAt(Buffer.from('a\nb\nc'), 4), 3);
  });
});
