import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redactor, findSecrets, isSecretKey } from '../../../src/core/agent/redact.ts';

const red = (text: string, known: string[] = []) =>
  new Redactor({ salt: 'test', known: () => known }).redact(text).text;

describe('redaction', () => {
  const cases: Array<[string, string, string]> = [
    [
      'PEM block',
      '-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nabc==\n-----END RSA PRIVATE KEY-----\nnext',
      '[REDACTED:private-key#1]\nnext',
    ],
    ['cut PEM block', 'key:\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE', 'key:\n[REDACTED:private-key#1]'],
    [
      'PGP key block',
      '-----BEGIN PGP PRIVATE KEY BLOCK-----\nxyz\n-----END PGP PRIVATE KEY BLOCK-----',
      '[REDACTED:private-key#1]',
    ],
    ['Anthropic key', 'key sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv end', 'key [REDACTED:api-key#1] end'],
    ['OpenAI key', 'OPENAI_API_KEY=sk-proj-AbCdEfGhIjKlMnOpQrStUvWx', 'OPENAI_API_KEY=[REDACTED:api-key#1]'],
    ['AWS key id', 'aws AKIAIOSFODNN7EXAMPLE.', 'aws [REDACTED:api-key#1].'],
    ['GitHub token', 'token: ghp_abcdefghijklmnopqrstuvwxyz0123456789', 'token: [REDACTED:api-key#1]'],
    ['Slack token', 'xoxb-1234567890-abcdefghij', '[REDACTED:api-key#1]'],
    [
      'bearer',
      'curl -H "Authorization: Bearer abc.def-ghi_jkl"',
      'curl -H "Authorization: Bearer [REDACTED:token#1]"',
    ],
    ['basic auth', 'Authorization: Basic dXNlcjpwYXNz', 'Authorization: Basic [REDACTED:token#1]'],
    ['JWT', 'jwt=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcdefghijk', 'jwt=[REDACTED:token#1]'],
    [
      'connection string',
      'DATABASE_URL=postgres://app:s3cr3t@db:5432/app',
      'DATABASE_URL=postgres://app:[REDACTED:password#1]@db:5432/app',
    ],
    ['env assignment', 'DB_PASSWORD=hunter22', 'DB_PASSWORD=[REDACTED:password#1]'],
    ['quoted assignment', "secret_key_base = 'abcdef123456'", "secret_key_base = '[REDACTED:secret#1]'"],
    [
      'YAML',
      'db:\n  password: yaml-pass\n  user: app',
      'db:\n  password: [REDACTED:password#1]\n  user: app',
    ],
    [
      'JSON',
      '{"client_secret": "cs-123456", "name": "x"}',
      '{"client_secret": "[REDACTED:secret#1]", "name": "x"}',
    ],
    ['CLI flag', 'mysqldump --password=flagpass db', 'mysqldump --password=[REDACTED:password#1] db'],
    ['SQL', "CREATE USER a IDENTIFIED BY 'sqlpass';", "CREATE USER a IDENTIFIED BY '[REDACTED:password#1]';"],
    ['redis', 'requirepass foobared', 'requirepass [REDACTED:password#1]'],
    [
      'shadow',
      'root:$6$abcdefgh$ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef:19000::',
      'root:[REDACTED:password-hash#1]:19000::',
    ],
  ];
  for (const [name, input, want] of cases) test(name, () => assert.equal(red(input), want));

  test('leaves ordinary text, references and non-secret keys alone', () => {
    for (const s of [
      'password_file: /etc/app/pass',
      'max_tokens = 4096',
      'PASSWORD=${DB_PASSWORD}',
      'token = os.environ["TOKEN"]',
      'Password changed for user bob',
      'listen 8080; server_name example.com;',
      'task-runner --name build',
      'passenger_enabled on;',
      '[REDACTED:password#1]',
    ])
      assert.equal(red(s), s, s);
  });

  test('values from the secret store are found anywhere', () => {
    assert.equal(
      red('the key is stored-value-123 here', ['stored-value-123']),
      'the key is [REDACTED:secret#1] here',
    );
  });

  test('the same secret gets the same placeholder, across texts and after a restart', () => {
    const r = new Redactor({ salt: 'ses_1' });
    assert.equal(r.redact('a=1\npassword=one-secret').text, 'a=1\npassword=[REDACTED:password#1]');
    assert.equal(r.redact('pass: two-secret').text, 'pass: [REDACTED:password#2]');
    // A value seen before is hidden wherever it shows up later.
    assert.equal(
      r.redact('log: login with one-secret failed').text,
      'log: login with [REDACTED:password#1] failed',
    );
    const again = new Redactor({ salt: 'ses_1', state: r.state() });
    assert.equal(again.redact('DB_PASS=two-secret').text, 'DB_PASS=[REDACTED:password#2]');
    assert.equal(again.redact('DB_PASS=three-secret').text, 'DB_PASS=[REDACTED:password#3]');
    assert.ok(!JSON.stringify(r.state()).includes('secret'), 'the state holds hashes only');
  });

  test('key names', () => {
    for (const k of [
      'password',
      'DB_PASSWORD',
      'dbPass',
      'api_key',
      'ApiKey',
      'AWS_SECRET_ACCESS_KEY',
      'auth-token',
      'client_secret',
      'passphrase',
    ])
      assert.ok(isSecretKey(k), k);
    for (const k of [
      'password_file',
      'max_tokens',
      'token_url',
      'passenger',
      'keyboard',
      'username',
      'password_min_length',
    ])
      assert.ok(!isSecretKey(k), k);
  });

  test('overlapping findings merge into one span', () => {
    const text = '"private_key": "-----BEGIN PRIVATE KEY-----\\nabc\\n-----END PRIVATE KEY-----"';
    assert.equal(findSecrets(text).length, 1);
  });
});
