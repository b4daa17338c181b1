/**
 * The Changes tab's diff view helpers (pure): unified diffs parse into numbered lines, paths map to
 * the languages configuration files are written in, and highlighting always escapes the guest's text.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  escapeHtml,
  highlightLine,
  languageOf,
  parseUnified,
} from '../../../src/renderer/src/features/sandboxes/tabs/highlight.ts';

test('a unified diff parses into lines with old and new numbers', () => {
  const lines = parseUnified(
    '--- a/etc/x\n+++ b/etc/x\n@@ -3,3 +3,3 @@\n keep\n-old\n+new\n tail\n\\ No newline at end of file\n',
  );
  assert.deepEqual(
    lines.map((l) => [l.kind, l.text, l.old, l.new]),
    [
      ['hunk', '@@ -3,3 +3,3 @@', null, null],
      ['ctx', 'keep', 3, 3],
      ['del', 'old', 4, null],
      ['add', 'new', null, 4],
      ['ctx', 'tail', 5, 5],
      ['note', 'No newline at end of file', null, null],
    ],
  );
  const added = parseUnified('--- a/f\n+++ b/f\n@@ -0,0 +1,2 @@\n+one\n+two\n');
  assert.deepEqual(
    added.filter((l) => l.kind === 'add').map((l) => l.new),
    [1, 2],
  );
});

test('paths map to languages', () => {
  assert.equal(languageOf('/etc/nginx/sites-available/default'), 'nginx');
  assert.equal(languageOf('/etc/systemd/system/web.service'), 'ini');
  assert.equal(languageOf('/etc/cron.d/backup'), 'bash');
  assert.equal(languageOf('/opt/app/config.yaml'), 'yaml');
  assert.equal(languageOf('/etc/default/grub'), 'bash');
  assert.equal(languageOf('/etc/mysql/my.cnf'), 'ini');
  assert.equal(languageOf('/etc/hostname'), null);
});

test('the guest’s text is escaped, highlighted or not', () => {
  const evil = `<img src=x onerror="alert('x')"> & <script>`;
  for (const lang of ['nginx', 'bash', 'ini', null]) {
    const html = highlightLine(evil, lang);
    // the only markup is highlight.js's own spans; the guest's '<' arrives as &lt;
    const tags = html.match(/<[^>]*>/g) ?? [];
    assert.ok(
      tags.every((t) => /^<span class="hljs-[a-z_ -]+">$|^<\/span>$/.test(t)),
      `${lang}: ${html}`,
    );
    assert.equal((html.match(/&lt;/g) ?? []).length, 2, html);
  }
  assert.equal(escapeHtml(`a<b>&"'`), 'a&lt;b&gt;&amp;&quot;&#39;');
  assert.match(highlightLine('listen 80;', 'nginx'), /class="hljs-/);
});
