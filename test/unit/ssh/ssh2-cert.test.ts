/**
 * The ssh2 certificate-login patch, driven on a stand-in protocol object so the exact bytes of the
 * USERAUTH_REQUEST can be checked. (test/integration/ssh/cert-login.test.ts logs in to a real sshd.)
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, randomBytes, verify } from 'node:crypto';
import { createRequire } from 'node:module';
import ssh2 from 'ssh2';
import { makeTestCa } from './helpers.ts';
import {
  certificateAuthHandler,
  certificateKey,
  installSsh2CertificateSupport,
  SUPPORTED_SSH2_VERSION,
} from '../../../src/core/ssh/ssh2-cert.ts';
import { ed25519RawFromBlob, parseKeyLine } from '../../../src/core/ssh/cert.ts';
import { SshReader } from '../../../src/core/ssh/wire.ts';

const require = createRequire(import.meta.url);

interface FakeProto {
  sent: Buffer[];
  [k: string]: unknown;
}

function fakeProtocol(sessionID: Buffer): FakeProto {
  const sent: Buffer[] = [];
  return {
    sent,
    _server: false,
    _kex: { sessionID },
    _kexinit: undefined,
    _authsQueue: [],
    _packetRW: {
      write: { allocStart: 0, alloc: (n: number) => Buffer.alloc(n), finalize: (b: Buffer) => b },
    },
    _cipher: { encrypt: (p: Buffer) => sent.push(Buffer.from(p)) },
  };
}

type AuthPK = (this: unknown, user: string, key: unknown, algo?: unknown, sign?: unknown) => void;
const authPK = (): AuthPK =>
  (require('ssh2/lib/protocol/Protocol.js') as { prototype: { authPK: AuthPK } }).prototype.authPK;

function readRequest(packet: Buffer) {
  let p = 1;
  const str = () => {
    const len = packet.readUInt32BE(p);
    const v = packet.subarray(p + 4, p + 4 + len);
    p += 4 + len;
    return v;
  };
  const user = str().toString();
  const service = str().toString();
  const method = str().toString();
  const signed = packet[p++] === 1;
  const algo = str().toString();
  const blob = str();
  const bodyEnd = p;
  const sig = signed ? str() : null;
  assert.equal(p, packet.length, 'no trailing bytes');
  return { user, service, method, signed, algo, blob, sig, body: packet.subarray(0, bodyEnd) };
}

describe('ssh2 certificate login patch', () => {
  test(`is for ssh2 ${SUPPORTED_SSH2_VERSION} and installs once`, () => {
    assert.equal((require('ssh2/package.json') as { version: string }).version, SUPPORTED_SSH2_VERSION);
    installSsh2CertificateSupport();
    const first = authPK();
    installSsh2CertificateSupport();
    assert.equal(authPK(), first);
  });

  test('a certificate key sends the certificate, signed with the base algorithm named', () => {
    const { ca } = makeTestCa();
    const issued = ca.issue({ principals: ['agent'], validitySeconds: 60, keyId: 'k', purpose: 'test' });
    const key = certificateKey(issued.privateKey, issued.certificate);
    const certBlob = parseKeyLine(issued.certificate).blob;
    assert.equal(key.type, 'ssh-ed25519-cert-v01@openssh.com');
    assert.deepEqual(key.getPublicSSH(), certBlob);
    assert.equal(key.isPrivateKey(), true);

    const sessionID = randomBytes(32);
    const proto = fakeProtocol(sessionID);
    // What ssh2's client does: query first, then sign on USERAUTH_PK_OK.
    authPK().call(proto, 'agent', key);
    authPK().call(proto, 'agent', key, undefined, (data: Buffer, cb: (s: Buffer) => void) =>
      cb(key.sign(data)),
    );
    assert.equal(proto.sent.length, 2);

    const query = readRequest(proto.sent[0]!);
    assert.deepEqual(
      [query.user, query.service, query.method, query.signed, query.algo],
      ['agent', 'ssh-connection', 'publickey', false, 'ssh-ed25519-cert-v01@openssh.com'],
    );
    assert.deepEqual(query.blob, certBlob);

    const req = readRequest(proto.sent[1]!);
    assert.equal(req.signed, true);
    assert.equal(req.algo, 'ssh-ed25519-cert-v01@openssh.com');
    assert.deepEqual(req.blob, certBlob);
    const sig = new SshReader(req.sig!);
    assert.equal(sig.text(), 'ssh-ed25519', 'the signature names the base algorithm');
    const signature = sig.string();
    sig.end();
    // Signed data: string session id ‖ the request up to the signature (RFC 4252 §7).
    const signedData = Buffer.concat([Buffer.from([0, 0, 0, 32]), sessionID, req.body]);
    const userRaw = ed25519RawFromBlob(parseKeyLine(issued.publicKey).blob);
    const pub = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: userRaw.toString('base64url') },
      format: 'jwk',
    });
    assert.equal(verify(null, signedData, pub, signature), true);
    assert.deepEqual(proto._authsQueue, ['publickey', 'publickey']);
  });

  test('plain keys still go through the original code', () => {
    installSsh2CertificateSupport();
    const plain = ssh2.utils.parseKey(ssh2.utils.generateKeyPairSync('ed25519').private) as ssh2.ParsedKey;
    const proto = fakeProtocol(randomBytes(32));
    authPK().call(proto, 'root', plain, undefined, (data: Buffer, cb: (s: Buffer) => void) =>
      cb(plain.sign(data)),
    );
    const req = readRequest(proto.sent[0]!);
    assert.equal(req.algo, 'ssh-ed25519');
    assert.deepEqual(req.blob, plain.getPublicSSH());
    assert.equal(new SshReader(req.sig!).text(), 'ssh-ed25519');
  });

  test('refuses what it cannot do', () => {
    const { ca } = makeTestCa();
    const issued = ca.issue({ principals: ['agent'], validitySeconds: 60, keyId: 'k', purpose: 'test' });
    assert.throws(() => certificateKey('not a key', issued.certificate), /cannot read the private key/);
    const rsa = ssh2.utils.generateKeyPairSync('rsa', { bits: 2048 }).private;
    assert.throws(() => certificateKey(rsa, issued.certificate), /ed25519 keys only/);
    assert.throws(
      () => certificateKey(issued.privateKey, issued.publicKey),
      /Expected an ssh-ed25519 certificate/,
    );
    const handler = certificateAuthHandler('agent', issued.privateKey, issued.certificate);
    assert.equal(handler[0]!.type, 'publickey');
    assert.equal(handler[0]!.username, 'agent');
  });
});
