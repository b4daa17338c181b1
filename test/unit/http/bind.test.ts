/**
 * Where the API may listen: loopback by default; a network address only with TLS and a token. The real
 * `fluid serve --api` is run: refused without TLS, refused with TLS but no token, and with both it
 * serves HTTPS with the certificate whose fingerprint it printed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { fluid, FLUID_BIN } from '../../support/cli.ts';
import { tempDir } from '../../support/core.ts';
import { createCore } from '../../../src/core/createCore.ts';
import { checkBind, isLoopback } from '../../../src/core/doors/http/server.ts';
import { testCore } from '../../support/core.ts';

test('loopback addresses are told apart from network ones', async () => {
  for (const h of ['127.0.0.1', '127.9.9.9', '::1', '[::1]', 'localhost']) assert.ok(isLoopback(h), h);
  for (const h of ['0.0.0.0', '::', '192.168.1.10', '10.0.0.1', 'example.com', '128.0.0.1'])
    assert.ok(!isLoopback(h), h);
  const core = testCore({ egress: null });
  try {
    assert.throws(() => checkBind(core, '0.0.0.0', null), /without TLS/);
    assert.doesNotThrow(() => checkBind(core, '127.0.0.1', null));
  } finally {
    await core.dispose();
  }
});

test('fluid serve --api: a network bind is refused without TLS, and without a token; with both it serves HTTPS', async () => {
  const { dir, cleanup } = tempDir('fluid-bind-');
  try {
    const noTls = await fluid(['serve', '--api', '--host', '0.0.0.0', '--port', '0'], { dataDir: dir });
    assert.equal(noTls.code, 1);
    assert.match(noTls.stderr, /Refusing to serve the API on 0\.0\.0\.0 without TLS/);
    const noToken = await fluid(['serve', '--api', '--host', '0.0.0.0', '--tls-generate'], { dataDir: dir });
    assert.equal(noToken.code, 1);
    assert.match(noToken.stderr, /no API token exists/);
    // a person makes a token (a process without a terminal cannot)
    const script = await fluid(['token', 'create', '--scope', 'agent', '--name', 'bot'], { dataDir: dir });
    assert.equal(script.code, 1);
    assert.match(script.stderr, /Only a person creates API tokens/);
    const core = createCore({ dataDir: dir });
    const { secret } = core.tokens.create('bot', 'agent', { door: 'test', id: 'person' }, null);
    await core.close();

    const child = spawn(
      process.execPath,
      [FLUID_BIN, 'serve', '--api', '--host', '0.0.0.0', '--tls-generate', '--json'],
      {
        env: { ...process.env, FLUID_DATA_DIR: dir },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    try {
      const info = await new Promise<{ port: number; tls: { fingerprint: string; certificate: string } }>(
        (resolve, reject) => {
          let out = '';
          child.stdout.on('data', (d) => {
            out += d;
            if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!));
          });
          child.on('exit', (code) => reject(new Error(`serve exited ${code}`)));
        },
      );
      const pem = readFileSync(info.tls.certificate, 'utf8');
      assert.equal(new X509Certificate(pem).fingerprint256, info.tls.fingerprint);
      const get = (token: string | null) =>
        new Promise<{ status: number; body: string; fingerprint: string }>((resolve, reject) => {
          const req = request(
            {
              host: '127.0.0.1',
              port: info.port,
              path: '/v1/hosts',
              ca: pem,
              servername: 'localhost',
              agent: false,
              headers: token ? { Authorization: `Bearer ${token}` } : {},
            },
            (res) => {
              const fingerprint = (
                res.socket as unknown as { getPeerX509Certificate(): X509Certificate }
              ).getPeerX509Certificate().fingerprint256;
              let body = '';
              res.on('data', (d) => (body += d));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body, fingerprint }));
            },
          );
          req.on('error', reject);
          req.end();
        });
      const ok = await get(secret);
      assert.equal(ok.status, 200, ok.body);
      assert.equal(ok.fingerprint, info.tls.fingerprint, 'the server presents the certificate it printed');
      assert.equal((await get(null)).status, 401);
      // plain HTTP on the TLS port gets nowhere
      const plain = await fetch(`http://127.0.0.1:${info.port}/health`).then(
        (r) => r.status,
        () => 0,
      );
      assert.notEqual(plain, 200);
    } finally {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
    }
  } finally {
    cleanup();
  }
});
