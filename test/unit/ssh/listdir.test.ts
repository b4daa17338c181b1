/**
 * The directory listing script runs with the local bash and GNU find (as a sandbox runs it under sudo):
 * hostile and non-UTF-8 names, symlinks (to files, directories, nothing, themselves), FIFOs, modes,
 * a file instead of a directory, a missing path, and a listing cut at its limit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FILE_EXIT, listDirScript, parseListing } from '../../../src/core/ssh/files.ts';
import { FluidError } from '../../../src/shared/errors.ts';

const runBash = (script: string, cwd?: string) =>
  spawnSync('bash', ['-c', script], { maxBuffer: 64 * 1024 * 1024, cwd });

function withDir(fn: (dir: string) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'fluid-listdir-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a directory: types, sizes, modes, owners, times, link targets; directories first', () => {
  withDir((dir) => {
    writeFileSync(join(dir, 'b.txt'), 'hello\n');
    chmodSync(join(dir, 'b.txt'), 0o640);
    utimesSync(join(dir, 'b.txt'), 1_700_000_000, 1_700_000_000);
    mkdirSync(join(dir, 'zdir'));
    writeFileSync(join(dir, '.hidden'), '');
    symlinkSync('b.txt', join(dir, 'link-to-file'));
    symlinkSync('zdir', join(dir, 'a-link-to-dir'));
    symlinkSync('/nonexistent/target', join(dir, 'dangling'));
    symlinkSync('self', join(dir, 'self'));
    assert.equal(spawnSync('mkfifo', [join(dir, 'pipe')]).status, 0);

    const r = runBash(listDirScript(dir));
    assert.equal(r.status, 0, r.stderr.toString());
    const l = parseListing(r.stdout, 100);
    assert.equal(l.total, 8);
    assert.equal(l.truncated, false);
    assert.equal(l.resolved, dir);
    const by = Object.fromEntries(l.entries.map((e) => [e.name, e]));
    // directories (and links to them) first, then the rest by name
    assert.deepEqual(
      l.entries.map((e) => e.name),
      ['a-link-to-dir', 'zdir', '.hidden', 'b.txt', 'dangling', 'link-to-file', 'pipe', 'self'],
    );
    assert.equal(by['b.txt']!.type, 'file');
    assert.equal(by['b.txt']!.size, 6);
    assert.equal(by['b.txt']!.mode, '0640');
    assert.equal(by['b.txt']!.mtime, new Date(1_700_000_000_000).toISOString());
    assert.equal(by['b.txt']!.owner, spawnSync('id', ['-un']).stdout.toString().trim());
    assert.equal(by['b.txt']!.group, spawnSync('id', ['-gn']).stdout.toString().trim());
    assert.equal(by['zdir']!.type, 'dir');
    assert.equal(by['link-to-file']!.type, 'symlink');
    assert.equal(by['link-to-file']!.target, 'b.txt');
    assert.equal(by['link-to-file']!.targetType, 'file');
    assert.equal(by['a-link-to-dir']!.targetType, 'dir');
    assert.equal(by['dangling']!.target, '/nonexistent/target');
    assert.equal(by['dangling']!.targetType, 'missing');
    assert.equal(by['self']!.targetType, 'loop');
    assert.equal(by['pipe']!.type, 'fifo');
    assert.equal(by['b.txt']!.target, null);
    assert.equal(by['b.txt']!.rawName, null);
  });
});

test('hostile names are data: quotes, substitutions, newlines, and bytes that are not UTF-8', () => {
  withDir((dir) => {
    const hostile = `it's "$(touch pwned)" \`touch pwned2\` $HOME;\nline2`;
    writeFileSync(join(dir, hostile), 'x');
    const latin1 = Buffer.from([0x63, 0x61, 0x66, 0xe9]); // "café" in latin-1
    writeFileSync(Buffer.concat([Buffer.from(dir + '/'), latin1]), 'y');
    // the directory's own name is hostile too
    const sub = join(dir, `d $(touch pwned3) '"`);
    mkdirSync(sub);
    writeFileSync(join(sub, 'inner'), '');

    const r = runBash(listDirScript(dir), dir);
    assert.equal(r.status, 0, r.stderr.toString());
    const l = parseListing(r.stdout, 100);
    const names = l.entries.map((e) => e.name);
    assert.ok(names.includes(hostile), names.join(' | '));
    const odd = l.entries.find((e) => e.rawName !== null);
    assert.ok(odd, 'the latin-1 name is flagged');
    assert.deepEqual(Buffer.from(odd.rawName!, 'base64'), latin1);
    assert.equal(odd.name, 'caf\uFFFD');
    const inner = runBash(listDirScript(sub), dir);
    assert.equal(inner.status, 0, inner.stderr.toString());
    assert.deepEqual(
      parseListing(inner.stdout, 10).entries.map((e) => e.name),
      ['inner'],
    );
    for (const p of ['pwned', 'pwned2', 'pwned3'])
      assert.equal(spawnSync('test', ['-e', join(dir, p)]).status, 1, `${p} was not created`);
  });
});

test('a file, a missing path and a symlink to a directory', () => {
  withDir((dir) => {
    writeFileSync(join(dir, 'f'), 'x');
    mkdirSync(join(dir, 'real'));
    writeFileSync(join(dir, 'real', 'inside'), 'x');
    symlinkSync(join(dir, 'real'), join(dir, 'via-link'));
    assert.equal(runBash(listDirScript(join(dir, 'f'))).status, FILE_EXIT.notDirectory);
    assert.equal(runBash(listDirScript(join(dir, 'nope'))).status, FILE_EXIT.notFound);
    const r = runBash(listDirScript(join(dir, 'via-link')));
    assert.equal(r.status, 0);
    const l = parseListing(r.stdout, 10);
    assert.equal(l.resolved, join(dir, 'real'), 'the resolved path is the link target');
    assert.deepEqual(
      l.entries.map((e) => e.name),
      ['inside'],
    );
  });
});

test('an empty directory, and a listing cut at its limit says how many there are', () => {
  withDir((dir) => {
    const empty = runBash(listDirScript(dir));
    assert.deepEqual(parseListing(empty.stdout, 10), {
      resolved: dir,
      entries: [],
      total: 0,
      truncated: false,
    });
    for (let i = 0; i < 30; i++) writeFileSync(join(dir, `f${String(i).padStart(2, '0')}`), '');
    const r = runBash(listDirScript(dir));
    const l = parseListing(r.stdout, 10);
    assert.equal(l.entries.length, 10);
    assert.equal(l.total, 30);
    assert.equal(l.truncated, true);
    // output cut in the middle of a record (an output cap): only whole records count
    const cut = parseListing(r.stdout.subarray(0, r.stdout.length - 7), 100);
    assert.equal(cut.entries.length, 29);
    assert.equal(cut.truncated, true);
  });
});

test('paths are validated before any script is made', () => {
  for (const bad of ['etc', '', '/a\0b'])
    assert.throws(
      () => listDirScript(bad),
      (e) => e instanceof FluidError && e.code === 'VALIDATION',
    );
  assert.throws(
    () => parseListing(Buffer.from('garbage'), 10),
    (e) => e instanceof FluidError && e.code === 'INTERNAL',
  );
});
