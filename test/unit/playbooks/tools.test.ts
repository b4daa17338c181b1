/**
 * The pieces around the playbooks room: its Python programs (the JSON events callback and the SSH
 * relay) compile and pass pyflakes, and the relay joins stdio to a Unix socket both ways; the
 * doctor says whether ansible-core and ansible-lint are here and how to install them; the Ansible
 * playbook schema ships inside the app with its licence.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CALLBACK_SOURCE_URL, RELAY_SOURCE_URL } from '../../../src/core/playbooks/ansible.ts';
import { ansibleChecks } from '../../../src/core/playbooks/doctor.ts';
import { tempDir } from '../../support/core.ts';

const PY = [fileURLToPath(CALLBACK_SOURCE_URL), fileURLToPath(RELAY_SOURCE_URL)];
const SCHEMA_DIR = fileURLToPath(
  new URL('../../../src/renderer/src/features/playbooks/schema/', import.meta.url),
);

test('the Python programs compile and pass pyflakes', () => {
  for (const f of PY) {
    const c = spawnSync(
      'python3',
      ['-c', 'import ast,sys; ast.parse(open(sys.argv[1]).read(), feature_version=(3,9))', f],
      { encoding: 'utf8' },
    );
    assert.equal(c.status, 0, `${f}: ${c.stderr}`);
  }
  const r = spawnSync('pyflakes3', PY, { encoding: 'utf8' });
  if (r.error) throw new Error('pyflakes3 is required for this test: apt-get install -y pyflakes3');
  assert.equal(r.status, 0, `pyflakes3:\n${r.stdout}${r.stderr}`);
});

test('the relay joins stdin and stdout to the socket, both ways, and ends with it', async () => {
  const { dir, cleanup } = tempDir('fluid-relay-');
  const sock = join(dir, 's.sock');
  const seen: Buffer[] = [];
  const server = createServer((c) => {
    c.on('data', (d) => {
      seen.push(d);
      c.write(Buffer.concat([Buffer.from('echo:'), d]));
    });
    c.on('end', () => c.end());
  });
  await new Promise<void>((r) => server.listen(sock, r));
  try {
    const p = spawn('python3', [PY[1]!, sock], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString('latin1')));
    const payload = Buffer.from([0, 1, 2, 255, 10, 13, 65]);
    p.stdin.write(payload);
    p.stdin.end();
    const code = await new Promise<number | null>((r) => p.on('close', r));
    assert.equal(code, 0);
    assert.deepEqual(Buffer.concat(seen), payload, 'bytes arrive unchanged');
    assert.equal(out, 'echo:' + payload.toString('latin1'));
    const missing = spawnSync('python3', [PY[1]!, join(dir, 'nope.sock')], { encoding: 'utf8' });
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /cannot reach/);
  } finally {
    server.close();
    cleanup();
  }
});

test('the doctor names ansible-core and ansible-lint with their versions, or how to install them', () => {
  const { dir, cleanup } = tempDir('fluid-fakeansible-');
  try {
    // Stand-ins that answer --version the way Debian 12's packages do.
    writeFileSync(join(dir, 'ansible-playbook'), '#!/bin/sh\necho "ansible-playbook [core 2.14.18]"\n', {
      mode: 0o755,
    });
    writeFileSync(
      join(dir, 'ansible-lint'),
      '#!/bin/sh\nprintf "ansible-lint \\033[1;36m6.13\\033[0m.1 using ansible 2.14.18\\n"\n',
      { mode: 0o755 },
    );
    const here = ansibleChecks([dir]);
    assert.deepEqual(
      here.map((c) => [c.id, c.status]),
      [
        ['ansible-core', 'pass'],
        ['ansible-lint', 'pass'],
      ],
    );
    assert.equal(here[0]!.detail, `ansible-core 2.14.18 (${join(dir, 'ansible-playbook')}).`);
    assert.match(here[1]!.detail, /^ansible-lint 6\.13\.1 .*production profile/);
    rmSync(join(dir, 'ansible-lint'));
    rmSync(join(dir, 'ansible-playbook'));
    const none = ansibleChecks([dir]);
    assert.deepEqual(
      none.map((c) => c.status),
      ['warn', 'warn'],
    );
    for (const c of none) assert.match(c.advice ?? '', /apt install ansible-core ansible-lint/);
    assert.match(none[0]!.detail, /not installed/);
  } finally {
    cleanup();
  }
});

test('the Ansible playbook schema ships inside the app, with its licence', () => {
  const schema = JSON.parse(readFileSync(join(SCHEMA_DIR, 'ansible-playbook.schema.json'), 'utf8')) as {
    title: string;
    $defs: Record<string, unknown>;
    items: unknown;
  };
  assert.equal(schema.title, 'Ansible Playbook');
  for (const d of ['play', 'task', 'block', 'ansible.builtin.import_playbook'])
    assert.ok(d in schema.$defs, d);
  assert.ok(existsSync(join(SCHEMA_DIR, 'LICENSE.md')));
  assert.match(readFileSync(join(SCHEMA_DIR, 'LICENSE.md'), 'utf8'), /MIT\s+license/);
  const monaco = readFileSync(
    fileURLToPath(new URL('../../../src/renderer/src/features/playbooks/monaco.ts', import.meta.url)),
    'utf8',
  );
  assert.match(monaco, /enableSchemaRequest: false/, 'no schema is fetched');
  assert.doesNotMatch(monaco, /https?:\/\/(?!json-schema)/, 'no URL to load anything from');
});
