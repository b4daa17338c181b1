/**
 * The guest setup/teardown scripts run for real against a fake root (FLUID_GUEST_ROOT), and the host
 * firewall applied for real inside throwaway network namespaces (root only).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { guestProxySetupScript, guestProxyTeardownScript } from '../../../src/core/egress/guest.ts';
import { hostFirewallScript, hostFirewallTeardownScript } from '../../../src/core/egress/firewall.ts';
import { tempDir } from '../../support/core.ts';
import { requirePython } from './support.ts';

const PROXY = 'http://10.239.0.1:3128';

function runIn(root: string, script: string, shell = 'sh'): string {
  return execFileSync(shell, ['-s'], {
    input: script,
    env: { ...process.env, FLUID_GUEST_ROOT: root },
  }).toString();
}

/** Every file under root with its content and mode. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const files = execFileSync('find', [root, '-type', 'f,l']).toString().trim().split('\n').filter(Boolean);
  for (const f of files.sort()) {
    const st = statSync(f);
    out[f.slice(root.length)] = `${(st.mode & 0o7777).toString(8)} ${readFileSync(f, 'utf8')}`;
  }
  return out;
}

describe('guest proxy scripts on a fake root', () => {
  for (const shell of ['sh', 'bash']) {
    test(`Debian-like guest (${shell}): configure, stay idempotent, tear down to the original bytes`, () => {
      const { dir: root, cleanup } = tempDir('fluid-guest-');
      try {
        for (const d of ['etc/apt/apt.conf.d', 'etc/profile.d', 'etc/sudoers.d', 'etc/systemd'])
          mkdirSync(join(root, d), { recursive: true });
        writeFileSync(
          join(root, 'etc/environment'),
          'PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"\nhttp_proxy=http://corp-proxy:8080\n  export NO_PROXY=corp.lan\nLANG=C.UTF-8',
        );
        chmodSync(join(root, 'etc/environment'), 0o600);
        writeFileSync(join(root, 'etc/apt/apt.conf.d/70debconf'), 'DPkg::Pre-Install-Pkgs {"x";};\n');
        const original = snapshot(root);

        const first = runIn(root, guestProxySetupScript(PROXY), shell);
        assert.match(first, /configured .*\/etc\/environment/);
        const configured = snapshot(root);
        const second = runIn(root, guestProxySetupScript(PROXY), shell);
        assert.equal(second.trim(), 'fluid-proxy: already configured');
        assert.deepEqual(snapshot(root), configured, 'a second run changes nothing');

        const env = readFileSync(join(root, 'etc/environment'), 'utf8');
        assert.ok(
          env.startsWith('PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"\n'),
          'existing lines kept',
        );
        assert.match(
          env,
          /^#fluid-disabled# http_proxy=http:\/\/corp-proxy:8080$/m,
          'conflicting proxy disabled',
        );
        assert.match(env, /^#fluid-disabled# {3}export NO_PROXY=corp\.lan$/m);
        assert.match(env, /^LANG=C\.UTF-8$/m, 'a last line without newline survives');
        assert.match(env, /^http_proxy=http:\/\/10\.239\.0\.1:3128$/m);
        assert.match(env, /^no_proxy=localhost,127\.0\.0\.1,::1$/m);
        assert.equal(statSync(join(root, 'etc/environment')).mode & 0o777, 0o600, 'mode kept');
        assert.equal(statSync(join(root, 'etc/sudoers.d/fluid-proxy')).mode & 0o777, 0o440);
        assert.match(
          readFileSync(join(root, 'etc/apt/apt.conf.d/95fluid-proxy'), 'utf8'),
          /Acquire::https::Proxy "http:\/\/10\.239\.0\.1:3128\/";/,
        );
        assert.ok(existsSync(join(root, 'etc/systemd/system.conf.d/95-fluid-proxy.conf')));
        const shellEnv = execFileSync('sh', [
          '-c',
          `. ${join(root, 'etc/profile.d/fluid-proxy.sh')}; echo "$https_proxy|$NO_PROXY"`,
        ]);
        assert.equal(shellEnv.toString().trim(), `${PROXY}|localhost,127.0.0.1,::1`);

        assert.match(runIn(root, guestProxyTeardownScript(), shell), /removed from/);
        assert.equal(runIn(root, guestProxyTeardownScript(), shell).trim(), 'fluid-proxy: nothing to remove');
        const restored = snapshot(root);
        // awk terminates the last line; everything else is byte-identical
        original['/etc/environment'] += '\n';
        assert.deepEqual(restored, original);
        assert.ok(!existsSync(join(root, 'etc/systemd/system.conf.d')), 'the drop-in dir it created is gone');
      } finally {
        cleanup();
      }
    });
  }

  test('RHEL-like guest: proxy= lands in [main] of dnf.conf once (yum.conf symlinked), others disabled', () => {
    const { dir: root, cleanup } = tempDir('fluid-guest-');
    try {
      mkdirSync(join(root, 'etc/dnf'), { recursive: true });
      mkdirSync(join(root, 'etc/profile.d'), { recursive: true });
      const dnf = '# dnf\n[main]\ngpgcheck=1\nProxy = http://corp:3128\n\n[extra]\nproxy=_none_\n';
      writeFileSync(join(root, 'etc/dnf/dnf.conf'), dnf);
      symlinkSync('dnf/dnf.conf', join(root, 'etc/yum.conf'));
      runIn(root, guestProxySetupScript(PROXY));
      const out = readFileSync(join(root, 'etc/dnf/dnf.conf'), 'utf8');
      assert.equal(out.match(/^proxy=http:\/\/10\.239\.0\.1:3128$/gm)?.length, 1);
      assert.ok(out.indexOf('[main]') < out.indexOf('proxy=http://10.239.0.1:3128'));
      assert.ok(out.indexOf('proxy=http://10.239.0.1:3128') < out.indexOf('[extra]'));
      assert.match(out, /^#fluid-disabled# Proxy = http:\/\/corp:3128$/m);
      assert.match(out, /^#fluid-disabled# proxy=_none_$/m);
      assert.ok(!existsSync(join(root, 'etc/apt')), 'no apt config where there is no apt');
      runIn(root, guestProxySetupScript(PROXY));
      assert.equal(readFileSync(join(root, 'etc/dnf/dnf.conf'), 'utf8'), out, 'idempotent');
      runIn(root, guestProxyTeardownScript());
      assert.equal(readFileSync(join(root, 'etc/dnf/dnf.conf'), 'utf8'), dnf);
      assert.equal(readFileSync(join(root, 'etc/environment'), 'utf8'), '', 'created empty, left empty');
    } finally {
      cleanup();
    }
  });

  test('a dnf.conf without [main] gets one', () => {
    const { dir: root, cleanup } = tempDir('fluid-guest-');
    try {
      mkdirSync(join(root, 'etc/dnf'), { recursive: true });
      writeFileSync(join(root, 'etc/dnf/dnf.conf'), '');
      runIn(root, guestProxySetupScript(PROXY));
      assert.match(
        readFileSync(join(root, 'etc/dnf/dnf.conf'), 'utf8'),
        /^\[main\]\n# BEGIN fluid-proxy.*\nproxy=http:\/\/10\.239\.0\.1:3128\n# END fluid-proxy\n$/,
      );
    } finally {
      cleanup();
    }
  });
});

// ---------------------------------------------------------------- firewall in network namespaces

const SERVER = `
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
while True:
    c, _ = s.accept()
    c.sendall(b"ok\\n")
    c.close()
`;
const PROBE = `
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
    print(s.recv(10).decode().strip())
except OSError as e:
    print("fail: %s" % e)
`;

/** Send UDP from `ip` to `dst`:`port` in one raw Ethernet frame to `mac`, out of `dev`. */
const RAW_UDP = `
import socket, struct, sys
dev, mac, ip, dst, port, data = sys.argv[1:7]
def csum(b):
    s = sum(struct.unpack('!10H', b)); s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
udp = struct.pack('!HHHH', 40000, int(port), 8 + len(data), 0) + data.encode()
h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, socket.inet_aton(ip), socket.inet_aton(dst))
h = h[:10] + struct.pack('!H', csum(h)) + h[12:]
own = open('/sys/class/net/%s/address' % dev).read().strip()
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((dev, 0))
s.send(bytes.fromhex(mac.replace(':', '')) + bytes.fromhex(own.replace(':', '')) + b'\\x08\\x00' + h + udp)
`;
/** Print every UDP datagram that reaches `port` until one says "end" (at most 30 s). */
const UDP_SINK = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', int(sys.argv[1])))
s.settimeout(30)
while True:
    d = s.recv(100).decode()
    if d == 'end':
        break
    print(d, flush=True)
`;

describe('host firewall in network namespaces', () => {
  const id = randomBytes(3).toString('hex');
  const host = `flh-${id}`;
  const sb = `fls-${id}`;
  const children: ChildProcess[] = [];
  const sh = (ns: string, cmd: string) =>
    execFileSync('ip', ['netns', 'exec', ns, 'sh', '-c', cmd]).toString();
  const probe = (ns: string, ip: string, port: number) =>
    execFileSync('ip', ['netns', 'exec', ns, 'python3', '-c', PROBE, ip, String(port), '1'])
      .toString()
      .trim();
  const serve = async (ns: string, ip: string, port: number) => {
    const c = spawn('ip', ['netns', 'exec', ns, 'python3', '-c', SERVER, ip, String(port)], {
      stdio: 'ignore',
    });
    children.push(c);
    const deadline = Date.now() + 3000;
    while (!sh(ns, `ss -ltn 'sport = :${port}'`).includes(`:${port}`)) {
      if (Date.now() > deadline) throw new Error(`listener ${ip}:${port} in ${ns} did not start`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  before(async () => {
    if (process.getuid?.() !== 0)
      throw new Error(
        'The host firewall test creates network namespaces and nftables rules: run it as root.',
      );
    requirePython();
    for (const tool of ['ip', 'nft', 'ss'])
      try {
        execFileSync('sh', ['-c', `command -v ${tool}`]);
      } catch {
        throw new Error(`${tool} is required for the firewall test (apt-get install -y iproute2 nftables)`);
      }
    execFileSync('ip', ['netns', 'add', host]);
    execFileSync('ip', ['netns', 'add', sb]);
    sh(
      host,
      `ip link set lo up
       ip link add br-fl type bridge && ip addr add 10.239.99.1/24 dev br-fl && ip link set br-fl up
       ip link add vh type veth peer name vs
       ip link set vh master br-fl && ip link set vh up
       ip link set vs netns ${sb}`,
    );
    sh(sb, 'ip link set lo up && ip addr add 10.239.99.2/24 dev vs && ip link set vs up');
    await serve(host, '0.0.0.0', 3128); // the proxy port
    await serve(host, '0.0.0.0', 2222); // any other host service (think sshd)
    await serve(sb, '10.239.99.2', 22); // the sandbox's sshd, which Fluid reaches through the host
  });

  after(() => {
    for (const c of children) if (c.pid) process.kill(c.pid, 'SIGKILL');
    for (const ns of [host, sb])
      try {
        execFileSync('ip', ['netns', 'del', ns]);
      } catch {
        /* already gone */
      }
  });

  test('without the firewall, the sandbox reaches every host port (the baseline)', () => {
    assert.equal(probe(sb, '10.239.99.1', 2222), 'ok');
  });

  test('with it: only the proxy port; replies to host-initiated connections still flow; idempotent', () => {
    const script = hostFirewallScript({ bridge: 'br-fl', gatewayIp: '10.239.99.1', proxyPort: 3128 });
    sh(host, script);
    sh(host, script);
    const tables = sh(host, 'nft list tables');
    assert.equal(tables.match(/table inet fluid_egress/g)?.length, 1);
    assert.equal(probe(sb, '10.239.99.1', 3128), 'ok', 'the proxy port is open');
    assert.match(probe(sb, '10.239.99.1', 2222), /^fail: timed out/, 'other host ports are dropped');
    assert.equal(probe(host, '10.239.99.2', 22), 'ok', 'the host still reaches the sandbox (SSH jump)');
    assert.match(
      sh(host, 'nft list table inet fluid_egress'),
      /iifname "br-fl" counter packets [1-9]\d* bytes \d+ drop/,
    );
  });

  test('IP in frames to link-local group addresses, which reach the host on the port itself, is dropped', async () => {
    const bridgeMac = sh(host, 'cat /sys/class/net/br-fl/address').trim();
    const ADDRS = ['01:80:c2:00:00:0e', '01:80:c2:00:00:03', '01:80:c2:00:00:02'];
    const send = (mac: string, from: string, data: string) =>
      execFileSync('ip', [
        'netns',
        'exec',
        sb,
        'python3',
        '-c',
        RAW_UDP,
        'vs',
        mac,
        from,
        '10.239.99.1',
        '5353',
        data,
      ]);
    const sendAll = (tag: string) => {
      // An ordinary frame too: the firewall's bridge rules drop it, without the firewall it arrives.
      send(bridgeMac, '10.239.99.2', `${tag}-plain`);
      // The others with a spoofed source address: the bridge's filters never see these frames.
      for (const [i, mac] of ADDRS.entries()) send(mac, `10.239.77.${i + 1}`, `${tag}-${mac}`);
    };
    const sink = async (tag: string) => {
      const c = spawn('ip', ['netns', 'exec', host, 'python3', '-c', UDP_SINK, '5353'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.push(c);
      c.on('exit', () => children.splice(children.indexOf(c), 1));
      let out = '';
      c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      const done = new Promise((r) => c.on('exit', r));
      const deadline = Date.now() + 10_000;
      while (!sh(host, "ss -lun 'sport = :5353'").includes(':5353')) {
        if (Date.now() > deadline) throw new Error('the UDP sink did not start');
        await new Promise((r) => setTimeout(r, 20));
      }
      sendAll(tag);
      // Sent after the frames above were delivered (each sender exits after its send), from the host.
      sh(
        host,
        `python3 -c "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'end', ('127.0.0.1', 5353))"`,
      );
      await done;
      return out.split('\n').filter(Boolean).sort();
    };
    // Without the table (torn down here, put back below), all of them reach the host's socket:
    // the frames are sent and the sink hears them.
    sh(host, hostFirewallTeardownScript());
    assert.deepEqual(await sink('open'), ['open-plain', ...ADDRS.map((m) => `open-${m}`)].sort());
    sh(host, hostFirewallScript({ bridge: 'br-fl', gatewayIp: '10.239.99.1', proxyPort: 3128 }));
    assert.deepEqual(await sink('closed'), [], 'nothing reaches the host with the firewall');
    assert.match(
      sh(host, 'nft list table inet fluid_egress'),
      /ether daddr & ff:ff:ff:ff:ff:f0 == 01:80:c2:00:00:00 counter packets 3 bytes \d+ drop/,
    );
  });

  test('teardown removes the table and is idempotent', () => {
    assert.match(sh(host, hostFirewallTeardownScript()), /removed/);
    assert.match(sh(host, hostFirewallTeardownScript()), /no firewall table to remove/);
    assert.equal(probe(sb, '10.239.99.1', 2222), 'ok');
  });
});
