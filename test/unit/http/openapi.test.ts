/**
 * The OpenAPI document: valid OpenAPI 3.1 (@seriousme/openapi-schema-validator), the very document
 * the build writes and the server serves, a client generated from it (openapi-typescript) compiles,
 * and every operation in it answers as it says (each response checked with ajv). The TypeScript client
 * package runs against a real server.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { clientTypes, openApiDocument } from '../../../scripts/build/openapi.ts';
import { apiFixture, type ApiFixture } from './support.ts';
import { FluidApiError, FluidClient, type Approval } from '../../../sdk/typescript/src/index.ts';

let f: ApiFixture;
let doc: Record<string, unknown>;
const root = new URL('../../../', import.meta.url).pathname;

before(async () => {
  f = await apiFixture();
  doc = (await (await fetch(`${f.url}/v1/openapi.json`)).json()) as Record<string, unknown>;
});
after(async () => {
  await f.close();
});

test('the served document is valid OpenAPI 3.1 and is the one the build writes', async () => {
  const v = new Validator();
  const r = await v.validate(doc as never);
  assert.equal(r.valid, true, JSON.stringify(r.errors, null, 1));
  assert.equal(v.version, '3.1');
  assert.deepEqual(doc, JSON.parse(JSON.stringify(openApiDocument())));
  // …and a broken one is not (the validator can fail)
  const broken = structuredClone(doc) as { paths: Record<string, Record<string, { parameters?: unknown }>> };
  broken.paths['/v1/sandboxes']!.get!.parameters = [{ name: 'host' }]; // a parameter must say where it goes
  assert.equal((await new Validator().validate(broken as never)).valid, false);
});

test('a client generated from the document with openapi-typescript compiles, and its types bite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fluid-client-'));
  try {
    writeFileSync(join(dir, 'schema.d.ts'), await clientTypes(doc));
    copyFileSync(join(root, 'sdk/typescript/src/index.ts'), join(dir, 'index.ts'));
    writeFileSync(
      join(dir, 'use.ts'),
      `import { FluidClient, type Sandbox } from './index.ts';
const c = new FluidClient({ baseUrl: 'http://127.0.0.1:1', token: 't' });
export async function use(): Promise<string> {
  const created = await c.call('post', '/v1/sandboxes', { body: { source: 'web-01' } });
  const id = 'sandbox' in created ? created.sandbox.id : created.id;
  const task = await c.createSandbox({ source: 'web-01', vcpus: 2 });
  const s: Sandbox = await c.call('get', '/v1/sandboxes/{sandbox}', { path: { sandbox: task.status === 'running' ? task.id : id } });
  const r = await c.call('post', '/v1/sandboxes/{sandbox}/exec', { path: { sandbox: s.id }, body: { command: 'ls' } });
  const snaps = await c.call('get', '/v1/sandboxes/{sandbox}/snapshots', { path: { sandbox: s.id } });
  // @ts-expect-error: exec needs a command
  await c.call('post', '/v1/sandboxes/{sandbox}/exec', { path: { sandbox: s.id }, body: {} });
  // @ts-expect-error: no such path
  await c.call('get', '/v1/nowhere');
  return r.stdout + snaps.map((x) => x.name).join();
}
`,
    );
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          allowImportingTsExtensions: true,
          lib: ['ES2022', 'DOM'],
          types: [],
        },
        include: ['*.ts'],
      }),
    );
    const tsc = join(root, 'node_modules/.bin/tsc');
    try {
      execFileSync(tsc, ['-p', dir], { encoding: 'utf8' });
    } catch (e) {
      assert.fail(
        `the generated client does not compile:\n${(e as { stdout: string }).stdout}${String((e as { stderr?: string }).stderr ?? '')}`,
      );
    }
    // the same check fails when the client misuses the API
    writeFileSync(
      join(dir, 'wrong.ts'),
      `import { FluidClient } from './index.ts';\nawait new FluidClient({ baseUrl: '', token: '' }).call('post', '/v1/sandboxes', { body: { source: 3 } });\n`,
    );
    assert.throws(() => execFileSync(tsc, ['-p', dir], { encoding: 'utf8' }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the TypeScript client package types are generated from the current document', async () => {
  const file = readFileSync(join(root, 'sdk/typescript/src/schema.d.ts'), 'utf8');
  assert.ok(
    file === (await clientTypes(doc)),
    'sdk/typescript/src/schema.d.ts is not what the contract makes now: run `npm run build:openapi` and commit it',
  );
});

test('every operation in the document answers, and what it answers is what the document says', async () => {
  const paths = doc.paths as Record<string, Record<string, unknown>>;
  let count = 0;
  for (const [template, ops] of Object.entries(paths)) {
    for (const method of Object.keys(ops)) {
      if (template === '/v1/events') continue; // a never-ending stream: tested in door.test.ts
      const path = template.replace(/\{[^}]+\}/g, 'no-such-thing');
      const hasBody = method !== 'get' && method !== 'delete';
      const r = await f.req(method.toUpperCase(), path, hasBody ? {} : undefined, { token: f.operator });
      await r.arrayBuffer();
      assert.notEqual(r.status, 405, `${method} ${template}`);
      if (r.status === 404) {
        // found the route, then the thing named in it was not there (never "no route")
        const again = await f.req(method.toUpperCase(), path, hasBody ? {} : undefined, {
          token: f.operator,
        });
        assert.doesNotMatch(
          ((await again.json()) as { message: string }).message,
          /^No route/,
          `${method} ${template}`,
        );
      }
      count++;
    }
  }
  assert.ok(count >= 100, `${count} operations`);
  assert.deepEqual(f.conformance.problems, []);
  const answered = new Set(f.conformance.seen.map((s) => s.operation));
  for (const [template, ops] of Object.entries(paths))
    for (const method of Object.keys(ops))
      if (template !== '/v1/events')
        assert.ok(
          answered.has(`${method.toUpperCase()} ${template}`),
          `${method} ${template} was not checked`,
        );
});

test('the TypeScript client package against a real server: calls, pages, tasks, the blocking ask', async () => {
  const fluid = new FluidClient({ baseUrl: f.url, token: f.agent });
  const hosts = await fluid.call('get', '/v1/hosts');
  assert.equal(hosts[0]!.id, 'local');
  for (let i = 0; i < 3; i++) await fluid.call('post', '/v1/approvals', { body: { title: `ts-${i}` } });
  const titles: string[] = [];
  for await (const a of fluid.pages<Approval>('/v1/approvals', { limit: 1 })) titles.push(a.title);
  assert.deepEqual(titles.filter((t) => t.startsWith('ts-')).sort(), ['ts-0', 'ts-1', 'ts-2']);
  const asked = fluid.ask({ title: 'ts asks' });
  let pending;
  while (
    !(pending = f.core.approvals.list({ status: 'pending', limit: 100 }).find((a) => a.title === 'ts asks'))
  )
    await new Promise((r) => setImmediate(r));
  f.core.approvals.decide(pending.id, 'deny', 'not now', { door: 'test', id: 'person' });
  assert.equal((await asked).status, 'denied');
  const task = f.core.tasks.start({
    kind: 'test.fail',
    title: 'fails',
    run: async () => Promise.reject(new Error('boom')),
  });
  await assert.rejects(
    fluid.waitTask(task.id),
    (e: unknown) => e instanceof FluidApiError && /boom/.test(e.message),
  );
  await assert.rejects(
    fluid.call('post', '/v1/approvals/{id}/decide', {
      path: { id: pending.id },
      body: { decision: 'approve' },
    }),
    (e: unknown) => e instanceof FluidApiError && e.status === 403 && e.code === 'DENIED',
  );
});
