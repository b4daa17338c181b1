import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  guestProxyFiles,
  guestProxySetupScript,
  guestProxyTeardownScript,
  normalizeProxyUrl,
} from '../../../src/core/egress/guest.ts';
import {
  hostFirewallRuleset,
  hostFirewallScript,
  hostFirewallTeardownScript,
  NFT_MISSING_EXIT,
} from '../../../src/core/egress/firewall.ts';
import { FluidError } from '../../../src/shared/errors.ts';

const syntaxOk = (script: string) => {
  execFileSync('bash', ['-n'], { input: script });
  execFileSync('sh', ['-n'], { input: script });
};
const isValidation = (e: unknown) => e instanceof FluidError && e.code === 'VALIDATION';

describe('guest proxy configuration', () => {
  test('proxy URLs are validated and normalized', () => {
    assert.equal(normalizeProxyUrl('http://10.239.0.1:3128'), 'http://10.239.0.1:3128');
    assert.equal(normalizeProxyUrl('http://10.239.0.1:3128/'), 'http://10.239.0.1:3128');
    assert.equal(normalizeProxyUrl('http://[fd00::1]:3128'), 'http://[fd00::1]:3128');
    assert.equal(normalizeProxyUrl('http://proxy.lan'), 'http://proxy.lan:80');
    for (const bad of [
      'https://10.0.0.1:3128',
      'http://u:p@10.0.0.1:3128',
      'http://10.0.0.1:3128/x',
      'ftp://x',
      'nope',
      "http://a'b:1",
    ])
      assert.throws(() => normalizeProxyUrl(bad), isValidation, bad);
  });

  test('owned files: apt, profile.d, sudoers (0440), systemd defaults', () => {
    const files = guestProxyFiles('http://10.239.0.1:3128');
    const byPath = new Map(files.map((f) => [f.path, f]));
    const apt = byPath.get('/etc/apt/apt.conf.d/95fluid-proxy')!;
    assert.match(apt.content, /^Acquire::http::Proxy "http:\/\/10\.239\.0\.1:3128\/";$/m);
    assert.match(apt.content, /^Acquire::https::Proxy "http:\/\/10\.239\.0\.1:3128\/";$/m);
    assert.equal(apt.mode, 0o644);
    const profile = byPath.get('/etc/profile.d/fluid-proxy.sh')!;
    for (const v of ['http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY'])
      assert.match(profile.content, new RegExp(`^export ${v}="http://10\\.239\\.0\\.1:3128"$`, 'm'));
    assert.match(profile.content, /^export no_proxy="localhost,127\.0\.0\.1,::1"$/m);
    syntaxOk(profile.content);
    assert.equal(byPath.get('/etc/sudoers.d/fluid-proxy')!.mode, 0o440);
    assert.match(
      byPath.get('/etc/systemd/system.conf.d/95-fluid-proxy.conf')!.content,
      /^\[Manager\]\nDefaultEnvironment="http_proxy=/m,
    );
  });

  test('setup and teardown scripts are well-formed sh and bash', () => {
    syntaxOk(guestProxySetupScript('http://10.239.0.1:3128'));
    syntaxOk(guestProxyTeardownScript());
  });
});

describe('host firewall', () => {
  const opts = { bridge: 'virbr-fluid', gatewayIp: '10.239.0.1', proxyPort: 3128 };

  test('the ruleset recreates one table, lets in DHCP, the proxy and replies, drops the rest', () => {
    const r = hostFirewallRuleset(opts);
    assert.match(r, /^table inet fluid_egress\ndelete table inet fluid_egress\ntable inet fluid_egress \{/);
    assert.match(
      r,
      /chain input \{\n.*policy accept;\n\s*ether daddr & ff:ff:ff:ff:ff:f0 == 01:80:c2:00:00:00 counter drop\n/,
      'IP in link-local frames, which reach the host on the tap itself, is dropped first',
    );
    assert.match(r, /iifname "virbr-fluid" ct state established,related accept/);
    assert.match(r, /iifname "virbr-fluid" udp dport 67 accept/);
    assert.match(r, /iifname "virbr-fluid" ip daddr 10\.239\.0\.1 tcp dport 3128 accept/);
    assert.match(r, /chain input \{[\s\S]*?iifname "virbr-fluid" counter drop\n {2}\}/);
    assert.match(
      r,
      /chain forward \{[^}]*iifname "virbr-fluid" counter drop\n\s*oifname "virbr-fluid" counter drop/,
    );
    assert.match(
      hostFirewallRuleset({ ...opts, gatewayIp: 'FD00::1' }),
      /ip6 daddr fd00::1 tcp dport 3128 accept/,
    );
  });

  test('scripts are well-formed; a missing nft is a clear message and exit 3', () => {
    const s = hostFirewallScript(opts);
    syntaxOk(s);
    syntaxOk(hostFirewallTeardownScript());
    let code = 0;
    let stderr = '';
    try {
      execFileSync('/bin/sh', ['-c', s], {
        env: { PATH: '/nonexistent' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (e) {
      const err = e as { status: number; stderr: Buffer };
      code = err.status;
      stderr = err.stderr.toString();
    }
    assert.equal(code, NFT_MISSING_EXIT);
    assert.match(stderr, /nft \(nftables\) is not installed/);
    const out = execFileSync('/bin/sh', ['-c', hostFirewallTeardownScript()], {
      env: { PATH: '/nonexistent' },
    }).toString();
    assert.match(out, /nft is not installed/);
  });

  test('inputs that could inject rules are refused', () => {
    assert.throws(() => hostFirewallRuleset({ ...opts, bridge: 'br0" accept' }), isValidation);
    assert.throws(() => hostFirewallRuleset({ ...opts, bridge: 'a-very-long-bridge-name' }), isValidation);
    assert.throws(() => hostFirewallRuleset({ ...opts, gatewayIp: '10.0.0.1; flush ruleset' }), isValidation);
    assert.throws(() => hostFirewallRuleset({ ...opts, proxyPort: 0 }), isValidation);
    assert.throws(() => hostFirewallRuleset({ ...opts, proxyPort: 70000 }), isValidation);
  });
});
