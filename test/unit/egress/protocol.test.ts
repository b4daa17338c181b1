import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeControl, parseProxyMessage } from '../../../src/core/egress/protocol.ts';

describe('egress control protocol', () => {
  test('ready', () => {
    assert.deepEqual(parseProxyMessage('{"type":"ready","listen":"10.239.0.1:3128","pid":42,"version":1}'), {
      type: 'ready',
      listen: '10.239.0.1:3128',
      pid: 42,
      version: 1,
      python: undefined,
      shared: false,
    });
    assert.equal(parseProxyMessage('{"type":"ready"}'), null);
  });

  test('ask', () => {
    const m = parseProxyMessage(
      '{"type":"ask","id":"a1","client":"10.239.0.5","sandbox":"sb1","host":"pypi.org","port":443,"method":"CONNECT"}',
    );
    assert.deepEqual(m, {
      type: 'ask',
      id: 'a1',
      client: '10.239.0.5',
      sandbox: 'sb1',
      host: 'pypi.org',
      port: 443,
      method: 'CONNECT',
    });
    assert.equal(
      parseProxyMessage('{"type":"ask","id":"a1","client":"x","host":"h","port":"443","method":"GET"}'),
      null,
    );
  });

  test('event keeps optional fields only when present and well-typed', () => {
    const m = parseProxyMessage(
      JSON.stringify({
        type: 'event',
        id: 'r1',
        client: '10.239.0.5',
        sandbox: 'sb1',
        host: 'deb.debian.org',
        port: 80,
        method: 'GET',
        decision: 'allow',
        reason: 'allowlist',
        bytesUp: 10,
        bytesDown: 2000,
        durationMs: 5,
        status: 200,
        path: '/debian/dists/bookworm/InRelease',
        error: 7,
      }),
    );
    assert.ok(m && m.type === 'event');
    assert.equal(m.sandbox, 'sb1');
    assert.equal(m.status, 200);
    assert.equal(m.path, '/debian/dists/bookworm/InRelease');
    assert.equal('error' in m, false);
    assert.equal('askId' in m, false);
  });

  test('event: unknown decision or reason is refused; null sandbox allowed; bytes default to 0', () => {
    const base = { type: 'event', client: 'c', host: 'h', port: 1, method: 'GET' };
    assert.equal(
      parseProxyMessage(JSON.stringify({ ...base, decision: 'maybe', reason: 'allowlist' })),
      null,
    );
    assert.equal(parseProxyMessage(JSON.stringify({ ...base, decision: 'deny', reason: 'because' })), null);
    const m = parseProxyMessage(
      JSON.stringify({ ...base, sandbox: null, decision: 'deny', reason: 'unknown-client' }),
    );
    assert.ok(m && m.type === 'event');
    assert.equal(m.sandbox, null);
    assert.equal(m.bytesUp, 0);
    assert.equal(m.bytesDown, 0);
  });

  test('event: pending with the approval the client was told about, and what failed upstream', () => {
    const base = { type: 'event', client: 'c', host: 'h', port: 1, method: 'GET', sandbox: 's' };
    const m = parseProxyMessage(
      JSON.stringify({
        ...base,
        decision: 'deny',
        reason: 'pending',
        approvalId: 'ap1',
        note: 'n',
        failure: 9,
      }),
    );
    assert.ok(m && m.type === 'event');
    assert.equal(m.reason, 'pending');
    assert.equal(m.approvalId, 'ap1');
    assert.equal(m.note, 'n');
    assert.equal('failure' in m, false, 'ill-typed optional fields are dropped');
    const f = parseProxyMessage(
      JSON.stringify({ ...base, decision: 'allow', reason: 'allowlist', failure: 'dns' }),
    );
    assert.ok(f && f.type === 'event');
    assert.equal(f.failure, 'dns');
  });

  test('routes, status, shared ready', () => {
    assert.deepEqual(
      parseProxyMessage(
        JSON.stringify({
          type: 'routes',
          served: ['10.239.1.2', 7],
          conflicts: [{ client: '10.239.1.3', sandbox: 'x', servedAs: 'y' }, { client: 1 }, 'bad'],
        }),
      ),
      {
        type: 'routes',
        served: ['10.239.1.2'],
        conflicts: [{ client: '10.239.1.3', sandbox: 'x', servedAs: 'y' }],
      },
    );
    assert.equal(parseProxyMessage('{"type":"routes","served":"x","conflicts":[]}'), null);
    assert.deepEqual(
      parseProxyMessage(
        JSON.stringify({
          type: 'status',
          id: 'probe',
          running: true,
          listen: '10.239.0.1:3128',
          pid: 9,
          version: 2,
          controllers: 2,
          clients: { '10.239.1.2': 'sb', '10.239.1.3': 5 },
        }),
      ),
      {
        type: 'status',
        id: 'probe',
        running: true,
        listen: '10.239.0.1:3128',
        pid: 9,
        version: 2,
        controllers: 2,
        clients: { '10.239.1.2': 'sb' },
      },
    );
    assert.deepEqual(
      parseProxyMessage(
        '{"type":"status","id":"probe","running":false,"listen":"10.239.0.1:3128","portInUse":true}',
      ),
      { type: 'status', id: 'probe', running: false, listen: '10.239.0.1:3128', portInUse: true },
    );
    assert.equal(parseProxyMessage('{"type":"status","listen":"x"}'), null);
    const r = parseProxyMessage('{"type":"ready","listen":"10.239.0.1:3128","shared":true}');
    assert.ok(r && r.type === 'ready' && r.shared === true);
  });

  test('error, pong, garbage', () => {
    assert.deepEqual(parseProxyMessage('{"type":"error","message":"boom"}'), {
      type: 'error',
      message: 'boom',
    });
    assert.deepEqual(parseProxyMessage('{"type":"pong","id":"3"}'), { type: 'pong', id: '3' });
    assert.equal(parseProxyMessage('not json'), null);
    assert.equal(parseProxyMessage('[1,2]'), null);
    assert.equal(parseProxyMessage('{"type":"nope"}'), null);
    assert.equal(parseProxyMessage(''), null);
  });

  test('control messages are single JSON lines', () => {
    const line = encodeControl({
      type: 'config',
      allow: { '10.239.0.5': ['deb.debian.org', '*.pypi.org:443'] },
      sandboxes: { '10.239.0.5': 'sb\n1' },
    });
    assert.ok(line.endsWith('\n'));
    assert.equal(line.indexOf('\n'), line.length - 1);
    assert.deepEqual(JSON.parse(line), {
      type: 'config',
      allow: { '10.239.0.5': ['deb.debian.org', '*.pypi.org:443'] },
      sandboxes: { '10.239.0.5': 'sb\n1' },
    });
    assert.equal(
      encodeControl({ type: 'decision', id: 'a1', decision: 'deny' }),
      '{"type":"decision","id":"a1","decision":"deny"}\n',
    );
  });
});
