/** The Files tab's pure helpers: paths, modes as ls shows them, base64 both ways, languages by file. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as pjoin } from 'node:path';
import {
  baseName,
  crumbs,
  fromBase64,
  hexDump,
  join,
  normalizePath,
  parentOf,
  symbolicMode,
  toBase64,
} from '../../../src/renderer/src/features/sandboxes/tabs/files/fileUtils.ts';
import { languageFor } from '../../../src/renderer/src/components/monaco/languageFor.ts';

test('paths normalise, and their parents, names and crumbs follow', () => {
  assert.equal(normalizePath(''), '/');
  assert.equal(normalizePath('/etc/nginx/'), '/etc/nginx');
  assert.equal(normalizePath('/a//b/./c/../d'), '/a/b/d');
  assert.equal(normalizePath('/../..'), '/');
  assert.equal(parentOf('/etc/nginx/nginx.conf'), '/etc/nginx');
  assert.equal(parentOf('/etc'), '/');
  assert.equal(parentOf('/'), '/');
  assert.equal(join('/', 'etc'), '/etc');
  assert.equal(join('/etc', 'hosts'), '/etc/hosts');
  assert.equal(baseName('/etc/hosts'), 'hosts');
  assert.deepEqual(crumbs('/etc/ssh'), [
    { name: '/', path: '/' },
    { name: 'etc', path: '/etc' },
    { name: 'ssh', path: '/etc/ssh' },
  ]);
});

test('modes read as ls -l prints them (checked against the real ls)', (t) => {
  const dir = mkdtempSync(pjoin(tmpdir(), 'fluid-mode-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const mode of [0o644, 0o755, 0o4755, 0o2750, 0o1777, 0o4644, 0o600, 0o7000]) {
    const f = pjoin(dir, `f${mode.toString(8)}`);
    writeFileSync(f, '');
    chmodSync(f, mode);
    const ls = execFileSync('ls', ['-l', f], { encoding: 'utf8' }).slice(0, 10);
    assert.equal(symbolicMode(mode.toString(8).padStart(4, '0'), 'file'), ls, `mode ${mode.toString(8)}`);
  }
  assert.equal(symbolicMode('0755', 'dir'), 'drwxr-xr-x');
  assert.equal(symbolicMode('0777', 'symlink'), 'lrwxrwxrwx');
  assert.equal(symbolicMode('junk', 'file'), '-?????????');
});

test('base64 round-trips any bytes, in chunks larger than one call can spread', () => {
  const bytes = new Uint8Array(200_000);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919) & 0xff;
  const b64 = toBase64(bytes);
  assert.equal(b64, Buffer.from(bytes).toString('base64'));
  assert.deepEqual(fromBase64(b64), bytes);
  assert.deepEqual(fromBase64(b64, 10), bytes.subarray(0, 10));
  assert.match(hexDump(new Uint8Array([0x7f, 0x45, 0x4c, 0x46])), /^00000000 {2}7f 45 4c 46 +\|\.ELF\|$/);
});

test('the language of a file: by name, directory and #! line', () => {
  const cases: Array<[string, string, string?]> = [
    ['/etc/nginx/nginx.conf', 'shell'],
    ['/etc/nginx/sites-available/default', 'shell'],
    ['/etc/ssh/sshd_config', 'shell'],
    ['/etc/systemd/system/web.service', 'ini'],
    ['/etc/sysctl.conf', 'ini'],
    ['/etc/mysql/my.cnf', 'ini'],
    ['/etc/default/grub', 'shell'],
    ['/root/.bashrc', 'shell'],
    ['/srv/app/config.yml', 'yaml'],
    ['/srv/app/package.json', 'javascript'],
    ['/srv/app/main.py', 'python'],
    ['/srv/app/Dockerfile', 'dockerfile'],
    ['/usr/local/bin/deploy', 'python', '#!/usr/bin/env python3'],
    ['/usr/local/bin/run', 'shell', '#!/bin/bash'],
    ['/etc/hostname', 'plaintext'],
    ['/etc/passwd', 'plaintext'],
    ['/srv/README.md', 'markdown'],
    ['/var/www/index.html', 'html'],
    ['/etc/environment', 'shell'],
  ];
  for (const [path, lang, first] of cases) assert.equal(languageFor(path, first), lang, path);
});
