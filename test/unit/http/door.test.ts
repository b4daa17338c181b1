/**
 * The HTTP door against a real server on a fresh core: who gets in (401), what an agent token may
 * never do (403, attacks included), what an operator token may do and when, the blocking ask,
 * Idempotency-Key replays, cursor pages, Server-Sent Events, error mapping, Host and Origin checks.
 * Every response is checked against the OpenAPI document the server serves.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { apiFixture, parseSse, type ApiFixture } from './support.ts';
import { request } from 'node:http';
import { FluidError } from '../../../src/shared/errors.ts';

let f: ApiFixture;
const person = { door: 'test' as const, id: 'person' };

before(async () => {
  f = await apiFixture();
});
after(async () => {
  await f.close();
  assert.deepEqual(f.conformance.problems, [], 'every response matched the OpenAPI document');
  assert.ok(f.conformance.seen.length > 50, 'the check saw the responses');
});

const json = async (r: Response) => (await r.json()) as Record<string, unknown>;

describe('authentication', () => {
  test('no token, a wrong token and a revoked token get 401 with the error body', async () => {
    for (const token of [null, 'fluid_a_not-a-real-token', 'x'.repeat(5000)]) {
      const r = await f.req('GET', '/v1/sandboxes', undefined, { token });
      assert.equal(r.status, 401);
      assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="fluid"');
      assert.equal((await json(r)).code, 'AUTH_FAILED');
    }
    const { secret } = f.core.tokens.create('short-lived', 'agent', person, null);
    assert.equal((await f.req('GET', '/v1/sandboxes', undefined, { token: secret })).status, 200);
    f.core.tokens.revoke('short-lived', person);
    assert.equal((await f.req('GET', '/v1/sandboxes', undefined, { token: secret })).status, 401);
  });

  test('/health and /v1/openapi.json need no token', async () => {
    const h = await f.req('GET', '/health', undefined, { token: null });
    assert.equal(h.status, 200);
    assert.deepEqual(await h.json(), { status: 'ok' });
    const o = await f.req('GET', '/v1/openapi.json', undefined, { token: null });
    assert.equal(((await o.json()) as { openapi: string }).openapi, '3.1.0');
  });

  test('the secret is kept only as its sha256, and shown once', async () => {
    const rows = f.core.db.prepare('SELECT * FROM api_tokens').all() as Array<Record<string, unknown>>;
    const text = JSON.stringify(rows);
    assert.ok(!text.includes(f.agent) && !text.includes(f.operator), 'no secret in the table');
    const listed = await json(await f.req('GET', '/v1/tokens', undefined, { token: f.operator }));
    assert.ok(!JSON.stringify(listed).includes(f.operator.slice(12)), 'a listing shows only the prefix');
  });
});

describe('an agent token asks and never decides', () => {
  test('deciding an approval is 403, with or without an unattended proof, even while unattended decisions are on', async () => {
    const a = f.core.approvals.request({
      kind: 'tool',
      title: 'run it',
      detail: '',
      risk: 'low',
      subject: {},
      requestedBy: { door: 'http', id: 'token:agent-1' },
    });
    f.core.settings.update({ approvals: { allowUnattendedCli: true } }, person);
    try {
      for (const body of [
        { decision: 'approve' },
        { decision: 'approve', presence: { kind: 'unattended' } },
        { decision: 'approve', presence: { kind: 'confirm' } },
        { decision: 'deny' },
      ]) {
        const r = await f.req('POST', `/v1/approvals/${a.id}/decide`, body);
        assert.equal(r.status, 403, JSON.stringify(body));
        assert.equal((await json(r)).code, 'DENIED');
      }
      // nor with a body that names another request
      const r = await f.req('POST', `/v1/approvals/${a.id}/decide`, { decision: 'approve', id: 'other' });
      assert.equal(r.status, 403);
    } finally {
      f.core.settings.update({ approvals: { allowUnattendedCli: false } }, person);
    }
    assert.equal(f.core.approvals.get(a.id).status, 'pending');
  });

  test('settings and rules, tokens, keys, egress, hosts, secrets and the audit export are 403', async () => {
    const attempts: Array<[string, string, unknown]> = [
      ['PATCH', '/v1/settings', { agent: { rules: [{ tool: '*', decision: 'allow' }] } }],
      ['PATCH', '/v1/settings', { approvals: { allowUnattendedCli: true } }],
      ['POST', '/v1/tokens', { name: 'mine', scope: 'operator' }],
      ['POST', '/v1/tokens', { name: 'mine', scope: 'agent' }],
      ['DELETE', '/v1/tokens/ops-1', undefined],
      ['POST', '/v1/presence/register-begin', { name: 'k' }],
      ['POST', '/v1/sandboxes/any/egress-allow', { destination: 'example.com' }],
      ['POST', '/v1/hosts', { address: '10.0.0.1', auth: { type: 'agent' }, acceptFingerprint: 'SHA256:x' }],
      ['POST', '/v1/playbooks/p/export', { vaultPassword: 'longenough' }],
      ['POST', '/v1/providers/save', { name: 'x' }],
      ['GET', '/v1/audit/export', undefined],
      ['POST', '/v1/changes/c/apply', {}],
    ];
    for (const [method, path, body] of attempts) {
      const r = await f.req(method, path, body);
      assert.equal(r.status, 403, `${method} ${path}`);
      assert.equal((await json(r)).code, 'DENIED');
    }
    assert.equal(f.core.settings.get().approvals.allowUnattendedCli, false);
    assert.equal(f.core.tokens.list().length, 2, 'no token was made');
  });

  test('an agent cannot subscribe to events outside its scope', async () => {
    const r = await f.req('GET', '/v1/events?name=audit.appended');
    assert.equal(r.status, 403);
  });

  test('an agent asks: approvals.request returns at once (201), its request names the token', async () => {
    const r = await f.req('POST', '/v1/approvals', { title: 'May I restart nginx?', risk: 'low' });
    assert.equal(r.status, 201);
    const a = await json(r);
    assert.equal(a.kind, 'ask');
    assert.deepEqual(a.requestedBy, { door: 'http', id: 'token:agent-1' });
  });
});

describe('an operator token is a person’s automation', () => {
  test('it decides only with an unattended proof, only while a person allows unattended decisions', async () => {
    const a = f.core.approvals.request({
      kind: 'ask',
      title: 'deploy?',
      detail: '',
      risk: 'high',
      subject: {},
      requestedBy: { door: 'http', id: 'token:agent-1' },
    });
    const decide = (body: unknown) =>
      f.req('POST', `/v1/approvals/${a.id}/decide`, body, { token: f.operator });
    let r = await decide({ decision: 'approve' });
    assert.equal(r.status, 403);
    const needs = await json(r);
    assert.match(String(needs.message), /unattended/);
    r = await decide({ decision: 'approve', presence: { kind: 'unattended' } });
    assert.equal(r.status, 403, 'unattended decisions are off');
    assert.match(String((await json(r)).message), /allowUnattendedCli/);
    r = await decide({ decision: 'approve', presence: { kind: 'confirm' } });
    assert.equal(r.status, 403, 'an in-window confirmation cannot come over HTTP');
    f.core.settings.update({ approvals: { allowUnattendedCli: true } }, person);
    try {
      r = await decide({ decision: 'approve', presence: { kind: 'unattended' } });
      assert.equal(r.status, 200);
      const out = await json(r);
      assert.equal(out.status, 'approved');
      assert.equal(out.decidedVia, 'unattended');
      assert.deepEqual(out.decidedBy, { door: 'http', id: 'token:ops-1' });
    } finally {
      f.core.settings.update({ approvals: { allowUnattendedCli: false } }, person);
    }
  });

  test("a room's refusal to let a request be approved holds for an operator's unattended decision", async () => {
    f.core.approvals.guard('test-stale', () => {
      throw new FluidError('CONFLICT', 'What was reviewed changed since; submit it again.');
    });
    const a = f.core.approvals.request({
      kind: 'test-stale',
      title: 'stale thing',
      detail: '',
      risk: 'high',
      subject: {},
      requestedBy: person,
    });
    f.core.settings.update({ approvals: { allowUnattendedCli: true } }, person);
    try {
      const r = await f.req(
        'POST',
        `/v1/approvals/${a.id}/decide`,
        { decision: 'approve', presence: { kind: 'unattended' } },
        { token: f.operator },
      );
      assert.equal(r.status, 409);
      assert.match(String((await json(r)).message), /submit it again/);
      assert.equal(f.core.approvals.get(a.id).status, 'pending');
    } finally {
      f.core.settings.update({ approvals: { allowUnattendedCli: false } }, person);
    }
  });

  test('it never creates or revokes tokens', async () => {
    for (const [m, p, b] of [
      ['POST', '/v1/tokens', { name: 'more', scope: 'operator', presence: { kind: 'unattended' } }],
      ['DELETE', '/v1/tokens/agent-1', undefined],
    ] as const) {
      const r = await f.req(m, p, b, { token: f.operator });
      assert.equal(r.status, 403, `${m} ${p}`);
    }
  });
});

describe('the blocking ask', () => {
  test('waits for a person and answers with the decision', async () => {
    const asked = f.req('POST', '/v1/approvals/ask', {
      title: 'Use the staging mirror?',
      detail: 'apt is slow',
    });
    let pending;
    while (
      !(pending = f.core.approvals
        .list({ status: 'pending', limit: 50 })
        .find((a) => a.title.startsWith('Use the staging')))
    )
      await new Promise((r) => setImmediate(r));
    f.core.approvals.decide(pending.id, 'approve', 'fine', person);
    const r = await asked;
    assert.equal(r.status, 200);
    const a = await json(r);
    assert.equal(a.status, 'approved');
    assert.equal(a.note, 'fine');
  });

  test("the original product's /api/v1/human/ask is the same call; a caller that goes away withdraws it", async () => {
    const ac = new AbortController();
    const asked = fetch(`${f.url}/api/v1/human/ask`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${f.agent}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ title: 'Withdrawn question' }),
      signal: ac.signal,
    }).catch((e: unknown) => e);
    let pending;
    while (
      !(pending = f.core.approvals
        .list({ status: 'pending', limit: 50 })
        .find((a) => a.title === 'Withdrawn question'))
    )
      await new Promise((r) => setImmediate(r));
    const changed = new Promise<void>((resolve) => {
      const off = f.core.bus.subscribe('approvals.changed', (a) => {
        if (a.id === pending.id && a.status !== 'pending') {
          off();
          resolve();
        }
      });
    });
    ac.abort();
    await asked;
    await changed;
    assert.equal(f.core.approvals.get(pending.id).status, 'cancelled');
  });
});

describe('Idempotency-Key', () => {
  test('the same request again gets the first response; another request under the key is a conflict', async () => {
    const body = { title: 'once only' };
    const headers = { 'Idempotency-Key': 'k-123' };
    const first = await f.req('POST', '/v1/approvals', body, { headers });
    const again = await f.req('POST', '/v1/approvals', body, { headers });
    assert.equal(first.status, 201);
    assert.equal(again.status, 201);
    assert.equal(again.headers.get('idempotency-replayed'), 'true');
    const [a, b] = [await json(first), await json(again)];
    assert.equal(a.id, b.id);
    assert.equal(f.core.approvals.list({ limit: 500 }).filter((x) => x.title === 'once only').length, 1);
    const other = await f.req('POST', '/v1/approvals', { title: 'something else' }, { headers });
    assert.equal(other.status, 409);
    // keys belong to a token: the operator's same key is its own
    const theirs = await f.req('POST', '/v1/approvals', body, { headers, token: f.operator });
    assert.equal(theirs.status, 201);
    assert.notEqual((await json(theirs)).id, a.id);
  });

  test('errors under a key are replayed too (4xx), and a bad key is refused', async () => {
    const headers = { 'Idempotency-Key': 'bad-1' };
    const r1 = await f.req('POST', '/v1/approvals', { title: '' }, { headers });
    const r2 = await f.req('POST', '/v1/approvals', { title: '' }, { headers });
    assert.equal(r1.status, 400);
    assert.equal(r2.status, 400);
    assert.equal(r2.headers.get('idempotency-replayed'), 'true');
    const bad = await f.req(
      'POST',
      '/v1/approvals',
      { title: 'x' },
      { headers: { 'Idempotency-Key': 'has space' } },
    );
    assert.equal(bad.status, 400);
  });
});

describe('lists page by cursor', () => {
  test('pages of two walk every approval once, with X-Next-Cursor and Link until the last page', async () => {
    for (let i = 0; i < 5; i++)
      f.core.approvals.request({
        kind: 'ask',
        title: `page-${i}`,
        detail: '',
        risk: 'low',
        subject: { i },
        requestedBy: person,
      });
    const all = f.core.approvals.list({ limit: 500 }).map((a) => a.id);
    const got: string[] = [];
    let path = '/v1/approvals?limit=2';
    for (let pages = 0; pages < 50; pages++) {
      const r = await f.req('GET', path);
      assert.equal(r.status, 200);
      const items = (await r.json()) as Array<{ id: string }>;
      got.push(...items.map((x) => x.id));
      const next = r.headers.get('x-next-cursor');
      if (!next) break;
      assert.match(r.headers.get('link') ?? '', /rel="next"/);
      path = `/v1/approvals?limit=2&cursor=${encodeURIComponent(next)}`;
    }
    assert.deepEqual(got, all);
    assert.equal((await f.req('GET', '/v1/approvals?cursor=garbage!')).status, 400);
    assert.equal((await f.req('GET', '/v1/approvals?limit=0')).status, 400);
  });

  test('the audit log pages through the core (beforeSeq)', async () => {
    const first = await f.req('GET', '/v1/audit?limit=3', undefined, { token: f.operator });
    const body = (await first.json()) as { entries: Array<{ seq: number }> };
    assert.equal(body.entries.length, 3);
    const next = first.headers.get('x-next-cursor')!;
    const second = (await (
      await f.req('GET', `/v1/audit?limit=3&cursor=${next}`, undefined, { token: f.operator })
    ).json()) as {
      entries: Array<{ seq: number }>;
    };
    assert.equal(second.entries[0]!.seq, body.entries[2]!.seq - 1);
  });
});

describe('streams and events', () => {
  test('GET /v1/events delivers contract events as SSE', async () => {
    const ac = new AbortController();
    const r = await fetch(`${f.url}/v1/events?name=approvals.changed`, {
      headers: { Authorization: `Bearer ${f.agent}` },
      signal: ac.signal,
    });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /text\/event-stream/);
    const reader = r.body!.getReader();
    f.core.approvals.request({
      kind: 'ask',
      title: 'evented',
      detail: '',
      risk: 'low',
      subject: {},
      requestedBy: person,
    });
    let text = '';
    while (!text.includes('evented')) text += new TextDecoder().decode((await reader.read()).value);
    const [name, payload] = parseSse(text.slice(0, text.lastIndexOf('\n\n') + 2))[0]!;
    assert.equal(name, 'approvals.changed');
    assert.equal((payload as { title: string }).title, 'evented');
    ac.abort();
  });

  test('a stream answers SSE items then end; one refused up front is a plain error', async () => {
    const task = f.core.tasks.start({
      kind: 'test.work',
      title: 'work',
      target: null,
      run: async () => ({ done: 1 }),
    });
    await f.core.tasks.wait(task.id);
    const r = await f.req('GET', `/v1/tasks/${task.id}/watch`);
    assert.equal(r.status, 200);
    const events = parseSse(await r.text());
    assert.equal(events.at(-1)![0], 'end');
    assert.equal((events.at(-2)![1] as { status: string }).status, 'succeeded');
    const missing = await f.req('GET', '/v1/tasks/no-such-task/watch');
    assert.equal(missing.status, 404);
    assert.equal((await json(missing)).code, 'NOT_FOUND');
  });
});

describe('errors and the edges of the door', () => {
  test('codes map to statuses with the same {code, message, data} body', async () => {
    const nf = await f.req('GET', '/v1/sandboxes/no-such-sandbox');
    assert.equal(nf.status, 404);
    assert.equal((await json(nf)).code, 'NOT_FOUND');
    const bad = await f.req('POST', '/v1/approvals', { title: 'x', risk: 'extreme' });
    assert.equal(bad.status, 400);
    const v = await json(bad);
    assert.equal(v.code, 'VALIDATION');
    assert.ok(Array.isArray((v.data as { issues: unknown[] }).issues));
    const notJson = await fetch(`${f.url}/v1/approvals`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${f.agent}`, 'Content-Type': 'application/json' },
      body: '{nope',
    });
    assert.equal(notJson.status, 400);
    const route = await f.req('GET', '/v1/no/such/route');
    assert.equal(route.status, 404);
    const method = await f.req('PUT', '/v1/approvals');
    assert.equal(method.status, 405);
    assert.match(method.headers.get('allow') ?? '', /GET/);
    const clash = await f.req('POST', '/v1/sandboxes/a/stop', { sandbox: 'b' });
    assert.equal(clash.status, 400, 'the path and the body disagree');
  });

  test('a foreign Host (DNS rebinding) is refused with 421 and a foreign Origin with 403', async () => {
    const raw = (headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const u = new URL(f.url);
        const req = request(
          {
            host: u.hostname,
            port: u.port,
            path: '/v1/sandboxes',
            headers: { Authorization: `Bearer ${f.agent}`, ...headers },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end();
      });
    assert.equal(await raw({ Host: 'evil.example:80' }), 421);
    assert.equal(await raw({ Origin: 'https://evil.example' }), 403);
    assert.equal(await raw({}), 200);
  });
});
