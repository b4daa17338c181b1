/**
 * The CLI bundle (out/cli, `npm run build`) run for real through bin/fluid.js: commands work from
 * it, files it reads at run time resolve as they do from the sources (the shell policy's wasm in
 * node_modules, Python programs next to the code that sends them, the web UI, package.json), ssh2
 * loads when a command connects, and bin/fluid.js falls back to the sources when the bundle is older
 * than them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
} from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';

const ROOT = new URL('../../../', import.meta.url).pathname.replace(/\/$/, '');
const OUT = join(ROOT, 'out/cli');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function fluid(
  args: string[],
  env: Record<string, string> = {},
  opts: { root?: string; onStdout?: (s: string, kill: () => void) => void } = {},
): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, FLUID_CLI_REQUIRE_BUNDLE: '1', ...env };
  delete childEnv.FLUID_CLI_SOURCES;
  for (const [k, v] of Object.entries(env)) if (v === '') delete childEnv[k];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(opts.root ?? ROOT, 'bin/fluid.js'), ...args], {
      env: childEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      opts.onStdout?.(stdout, () => child.kill('SIGTERM'));
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

let dataDir: string;
before(() => {
  assert.ok(existsSync(join(OUT, 'main.js')), 'out/cli/main.js is missing: run `npm run build` first');
  dataDir = mkdtempSync(join(tmpdir(), 'fluid-cli-bundle-'));
});
after(() => rmSync(dataDir, { recursive: true, force: true }));

describe('commands from the bundle', () => {
  test('host list --json', async () => {
    const r = await fluid(['host', 'list', '--json'], { FLUID_DATA_DIR: dataDir });
    assert.equal(r.code, 0, r.stderr);
    const hosts = JSON.parse(r.stdout) as Array<{ id: string; kind: string }>;
    assert.deepEqual(
      hosts.map((h) => [h.id, h.kind]),
      [['local', 'local']],
    );
  });

  test('policy check loads the shell parser (wasm from node_modules) and decides', async () => {
    const ok = await fluid(['policy', 'check', '--json', '--', 'cat /etc/hosts | grep -c localhost'], {
      FLUID_DATA_DIR: dataDir,
    });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((JSON.parse(ok.stdout) as { decision: string }).decision, 'allow');
    const no = await fluid(['policy', 'check', '--json', '--', 'rm -rf /'], { FLUID_DATA_DIR: dataDir });
    assert.equal(no.code, 1, no.stderr);
    assert.equal((JSON.parse(no.stdout) as { decision: string }).decision, 'deny');
  });

  test('serve finds the built web UI and package.json from the bundle', async () => {
    const fetched: { page: Promise<{ status: number; body: string }> | null } = { page: null };
    const r = await fluid(
      ['serve', '--json', '--port', '0'],
      { FLUID_DATA_DIR: dataDir },
      {
        onStdout: (out, kill) => {
          const line = out.split('\n').find((l) => l.startsWith('{'));
          if (!line || fetched.page) return;
          const { origin } = JSON.parse(line) as { origin: string };
          fetched.page = fetch(`${origin}/`)
            .then(async (res) => ({ status: res.status, body: await res.text() }))
            .finally(kill);
        },
      },
    );
    assert.ok(fetched.page, `serve printed no address: ${r.stderr}`);
    const got = await fetched.page;
    assert.equal(got.status, 200);
    assert.match(got.body, /<div id="root">/);
    assert.equal(r.code, 0, r.stderr);
  });

  test('ssh2 loads when a command connects: host add probes a real SSH server for its key', async () => {
    const key = ssh2.utils.generateKeyPairSync('ed25519');
    const server = new ssh2.Server({ hostKeys: [key.private] }, (client) => client.on('error', () => {}));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    try {
      const parsed = ssh2.utils.parseKey(key.public);
      if (parsed instanceof Error) throw parsed;
      const blob = parsed.getPublicSSH();
      const fingerprint = `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
      const r = await fluid(
        ['host', 'add', `root@127.0.0.1:${port}`, '--agent', '--accept-fingerprint', 'SHA256:not-this-one'],
        { FLUID_DATA_DIR: dataDir },
      );
      assert.equal(r.code, 1);
      assert.ok(r.stderr.includes(`presents ${fingerprint}`), r.stderr);
    } finally {
      server.close();
    }
  });
});

describe('files read at run time', () => {
  test('every new URL(…, import.meta.url) in the bundle points at a file or directory that exists', () => {
    const chunks = readdirSync(OUT).filter((f) => f.endsWith('.js'));
    const refs: string[] = [];
    for (const chunk of chunks) {
      const code = readFileSync(join(OUT, chunk), 'utf8');
      for (const m of code.matchAll(/new URL\(\s*(["'])([^"']+)\1\s*,\s*import\.meta\.url\s*\)/g)) {
        const target = new URL(m[2]!, `file://${join(OUT, chunk)}`).pathname;
        refs.push(m[2]!);
        assert.ok(existsSync(target), `${chunk} reads ${m[2]} → ${target}, which does not exist`);
      }
    }
    for (const wanted of ['../../package.json', '../../out/renderer'])
      assert.ok(refs.includes(wanted), `the bundle should read ${wanted}; it reads ${refs.join(', ')}`);
    assert.ok(
      refs.some((r) => r.endsWith('.py')),
      'the bundle sends Python programs to hosts',
    );
  });

  test('the Python programs next to the bundle are the ones in the sources', () => {
    const inputs = (JSON.parse(readFileSync(join(OUT, 'inputs.json'), 'utf8')) as { inputs: string[] })
      .inputs;
    const py = inputs.filter((f) => f.endsWith('.py'));
    assert.ok(py.length > 0, 'inputs.json lists the Python programs');
    for (const f of py)
      assert.ok(
        readFileSync(join(OUT, f.split('/').at(-1)!)).equals(readFileSync(join(ROOT, f))),
        `out/cli/${f.split('/').at(-1)} differs from ${f}`,
      );
  });
});

describe('bin/fluid.js chooses the bundle only when it is current', () => {
  let root: string;
  before(() => {
    // a checkout of our own: bin and out/cli copied, the sources and node_modules shared
    root = mkdtempSync(join(tmpdir(), 'fluid-cli-launch-'));
    mkdirSync(join(root, 'bin'));
    cpSync(join(ROOT, 'bin/fluid.js'), join(root, 'bin/fluid.js'));
    cpSync(join(ROOT, 'package.json'), join(root, 'package.json'));
    cpSync(join(ROOT, 'package-lock.json'), join(root, 'package-lock.json'));
    mkdirSync(join(root, 'scripts'));
    symlinkSync(join(ROOT, 'scripts/build'), join(root, 'scripts/build'));
    symlinkSync(join(ROOT, 'src'), join(root, 'src'));
    symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
    mkdirSync(join(root, 'out'));
    cpSync(OUT, join(root, 'out/cli'), { recursive: true });
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  test('a bundle older than a source it was built from is not used', async () => {
    const old = new Date('2001-01-01T00:00:00Z');
    utimesSync(join(root, 'out/cli/main.js'), old, old);
    const refused = await fluid(['host', 'list', '--json'], { FLUID_DATA_DIR: dataDir }, { root });
    assert.equal(refused.code, 2);
    assert.match(
      refused.stderr,
      /the CLI bundle cannot be used: \S+ changed after the build\. Run `npm run build`/,
    );
    // without FLUID_CLI_REQUIRE_BUNDLE the sources run instead, and the command works
    const fallback = await fluid(
      ['host', 'list', '--json'],
      { FLUID_DATA_DIR: dataDir, FLUID_CLI_REQUIRE_BUNDLE: '' },
      { root },
    );
    assert.equal(fallback.code, 0, fallback.stderr);
    assert.equal((JSON.parse(fallback.stdout) as unknown[]).length, 1);
  });

  test('no bundle at all: the sources run', async () => {
    rmSync(join(root, 'out/cli'), { recursive: true, force: true });
    const refused = await fluid(['host', 'list', '--json'], { FLUID_DATA_DIR: dataDir }, { root });
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /there is no bundle/);
    const r = await fluid(
      ['host', 'list', '--json'],
      { FLUID_DATA_DIR: dataDir, FLUID_CLI_REQUIRE_BUNDLE: '' },
      { root },
    );
    assert.equal(r.code, 0, r.stderr);
  });
});
