/**
 * The system diff's host program on real disk images, without a VM: an ext4 base image, a baseline
 * overlay, and changes made through the kernel's ext4 driver (a writable qemu-storage-daemon FUSE
 * export, loop-mounted) — the way a guest writes. The fast path (allocation map → inode tables →
 * inodes) and the full walk must report exactly the same items, also when the journal still needs
 * recovery, and across a series of layers. Needs root, qemu-img, qemu-storage-daemon, /dev/fuse and
 * loop devices; it fails with instructions when they are missing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalConnection } from '../../src/core/hosts/connection.ts';
import {
  collectCommand,
  COLLECT_SOURCE_URL,
  NOISE_RULES,
  runCollect,
  type HostResult,
} from '../../src/core/diff/host.ts';
import { buildDiff } from '../../src/core/diff/model.ts';
import { compareDiffs, type Diff } from '../../src/shared/contract/diff.ts';

const conn = new LocalConnection('local');
let dir = '';

function requireTools(): void {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (loop devices and mounts)');
  for (const [t, pkg] of [
    ['qemu-img', 'qemu-utils'],
    ['qemu-storage-daemon', 'qemu-system-common'],
    ['mkfs.ext4', 'e2fsprogs'],
    ['unshare', 'util-linux'],
  ])
    if (spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0)
      missing.push(`${t} (apt-get install -y ${pkg})`);
  if (!existsSync('/dev/fuse')) missing.push('/dev/fuse (fuse3)');
  if (missing.length) throw new Error(`The diff image tests need: ${missing.join(', ')}`);
}

const sh = (script: string) =>
  execFileSync('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

/** Change an image through the kernel's ext4 driver, as a guest does; `keep` leaves the journal dirty. */
function guestWrites(image: string, script: string, opts: { dirty?: string } = {}): void {
  const w = mkdtempSync(join(dir, 'w-'));
  const body = `set -e
: > ${w}/raw; mkdir -p ${w}/m
qemu-storage-daemon --blockdev '{"driver":"qcow2","node-name":"d","file":{"driver":"file","filename":"${image}"}}' \\
  --export '{"type":"fuse","id":"e","node-name":"d","mountpoint":"${w}/raw","writable":true}' & q=$!
i=0; until [ "$(stat -c %s ${w}/raw)" -gt 0 ]; do i=$((i+1)); [ $i -lt 500 ] || exit 9; sleep 0.02; done
mount -o loop,strictatime ${w}/raw ${w}/m
cd ${w}/m
${script}
cd /
${
  opts.dirty
    ? // commit the journal, copy the image while the filesystem is still mounted (recovery needed)
      `sync; qemu-img convert -U -O qcow2 -B ${opts.dirty.split(' ')[0]} -F qcow2 ${image} ${opts.dirty.split(' ')[1]}`
    : ''
}
umount ${w}/m; kill $q; wait $q || true`;
  execFileSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', body], { stdio: 'pipe' });
  rmSync(w, { recursive: true, force: true });
}

function overlay(backing: string, name: string): string {
  const p = join(dir, name);
  sh(`qemu-img create -q -f qcow2 -F qcow2 -b ${backing} ${p}`);
  return p;
}

async function collect(
  baseline: string,
  to: string,
  method: 'fast' | 'walk',
  from: string | null = null,
): Promise<HostResult> {
  return runCollect(conn, {
    op: 'diff',
    workdir: join(dir, 'run'),
    tmpdir: join(dir, 'tmp'),
    lock: join(dir, 'lock'),
    disk: 'vda',
    baseline,
    index: join(dir, `index-${baseline.split('/').pop()}.sqlite`),
    from: from ? { kind: 'image', image: from } : { kind: 'baseline' },
    to: { kind: 'image', image: to },
    method,
  });
}

const shape = (r: HostResult): Diff => ({
  ...buildDiff(r, {
    id: 'd',
    sandboxId: 's',
    from: { kind: 'baseline' },
    to: { kind: 'now' },
    createdAt: new Date(0).toISOString(),
    createdBy: { door: 'test', id: 't' },
  }),
  excluded: [],
  noise: null,
});

/** Both methods; they must agree item by item and on the noise; returns the fast one. */
async function both(baseline: string, to: string, from: string | null = null) {
  const fast = await collect(baseline, to, 'fast', from);
  const walk = await collect(baseline, to, 'walk', from);
  assert.equal(fast.method, 'fast');
  assert.equal(walk.method, 'walk');
  const cmp = compareDiffs(shape(walk), shape(fast));
  assert.ok(
    cmp.equal,
    `fast and walk disagree: ${JSON.stringify({ onlyWalk: cmp.onlyInA.map((i) => i.key), onlyFast: cmp.onlyInB.map((i) => i.key), differing: cmp.differing.map((d) => [d.key, d.fields]) })}`,
  );
  assert.equal(shape(fast).sha256, shape(walk).sha256);
  assert.deepEqual(fast.noise.sort(), walk.noise.sort());
  return { fast, walk, diff: shape(fast) };
}

const keys = (d: Diff) => d.items.map((i) => `${i.kind} ${i.key} ${'change' in i ? i.change : ''}`.trim());

let base = '';
let baseline = '';

before(() => {
  requireTools();
  dir = mkdtempSync(join(tmpdir(), 'fluid-diff-images-'));
  const root = join(dir, 'root');
  mkdirSync(join(root, 'etc/systemd/system/multi-user.target.wants'), { recursive: true });
  mkdirSync(join(root, 'usr/share/data'), { recursive: true });
  mkdirSync(join(root, 'var/log'), { recursive: true });
  writeFileSync(join(root, 'etc/os-release'), 'ID=debian\n');
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\n');
  writeFileSync(join(root, 'etc/motd'), 'Debian\n');
  writeFileSync(join(root, 'etc/issue.net'), 'Debian GNU/Linux 12\n');
  for (let i = 0; i < 3000; i++) writeFileSync(join(root, `usr/share/data/f${i}`), `file ${i}\n`);
  const raw = join(dir, 'base.raw');
  sh(
    `mkfs.ext4 -q -F -b 4096 -I 256 -d ${root} ${raw} 512M && qemu-img convert -O qcow2 ${raw} ${join(dir, 'base.qcow2')} && rm -f ${raw}`,
  );
  base = join(dir, 'base.qcow2');
  baseline = overlay(base, 'baseline.qcow2');
  // "identity" work before the baseline: must never show in a diff against it
  guestWrites(
    baseline,
    `echo sandbox-1 > etc/hostname; echo 'fluid:x:1000:1000::/home/fluid:/bin/sh' >> etc/passwd`,
  );
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('fast path and full walk on real ext4 layers', () => {
  test('a realistic change: both methods report exactly it; the identity work before the baseline is absent', async () => {
    const top = overlay(baseline, 'top.qcow2');
    guestWrites(
      top,
      `echo welcome > etc/motd
rm etc/issue.net
chmod 600 etc/os-release
mkdir -p opt/app/lib && for i in $(seq 1 40); do echo "lib $i" > opt/app/lib/l$i; done
ln -s /opt/app/lib/l1 opt/app/current
printf '[Service]\\nExecStart=/bin/true\\n' > etc/systemd/system/app.service
ln -s /etc/systemd/system/app.service etc/systemd/system/multi-user.target.wants/app.service
echo 'deploy:x:1001:1001::/home/deploy:/bin/bash' >> etc/passwd
echo 'deploy:x:1001:' >> etc/group
echo boot >> var/log/syslog
for i in 5 6 7; do echo changed > usr/share/data/f$i; done
rm usr/share/data/f9
mv usr/share/data/f10 usr/share/data/f10-renamed
touch usr/share/data/f11
cat usr/share/data/* > /dev/null # reading changes access times only: not a change, and not work`,
    );
    const { fast, diff } = await both(baseline, top);
    assert.deepEqual(
      keys(diff),
      [
        'user deploy added',
        'group deploy added',
        'file /etc/issue.net deleted',
        'file /etc/motd modified',
        'file /etc/os-release modified',
        'file /opt added',
        'file /opt/app added',
        'file /opt/app/current added',
        'file /opt/app/lib added',
        ...Array.from({ length: 40 }, (_, i) => `file /opt/app/lib/l${i + 1}`)
          .sort()
          .map((k) => `${k} added`),
        'file /usr/share/data/f10 deleted',
        'file /usr/share/data/f10-renamed added',
        'file /usr/share/data/f5 modified',
        'file /usr/share/data/f6 modified',
        'file /usr/share/data/f7 modified',
        'file /usr/share/data/f9 deleted',
        'unit /etc/systemd/system/app.service added',
        'unit-state app.service|/etc/systemd/system/multi-user.target.wants/app.service enabled',
      ].sort((a, b) => kindRank(a) - kindRank(b) || 0),
    );
    assert.ok(
      !JSON.stringify(diff.items).includes('sandbox-1'),
      'the hostname set before the baseline is not a change',
    );
    assert.ok(
      !diff.items.some((i) => i.key === 'fluid'),
      'the user made before the baseline is not a change',
    );
    const motd = diff.items.find((i) => i.key === '/etc/motd')!;
    assert.ok(
      motd.kind === 'file' && motd.content?.kind === 'text' && /-Debian\n\+welcome/.test(motd.content.diff),
    );
    const os = diff.items.find((i) => i.key === '/etc/os-release')!;
    assert.ok(os.kind === 'file' && os.aspects.join() === 'mode' && os.after!.mode === '0600');
    assert.deepEqual(fast.noise.sort(), [
      ['/etc/group', 'summarized'],
      ['/etc/passwd', 'summarized'],
      ['/var/log/syslog', 'logs'],
    ]);
    assert.ok(
      Number(fast.stats.pathsCompared) < 500,
      `the fast path compared ${fast.stats.pathsCompared} paths of ~3000`,
    );
  });

  test('a journal that still needs recovery is replayed into a throwaway layer, never into the image', async () => {
    const top = overlay(baseline, 'live.qcow2');
    const copy = join(dir, 'dirty.qcow2');
    guestWrites(top, `echo journaled > etc/motd; mkdir srv; echo x > srv/new; rm usr/share/data/f20`, {
      dirty: `${baseline} ${copy}`,
    });
    const before = sh(`qemu-img map --output=json ${copy} | sha256sum`);
    const { fast, diff } = await both(baseline, copy);
    assert.deepEqual(fast.filesystem.replayed, ['to']);
    assert.deepEqual(keys(diff), [
      'file /etc/motd modified',
      'file /srv added',
      'file /srv/new added',
      'file /usr/share/data/f20 deleted',
    ]);
    assert.equal(
      sh(`qemu-img map --output=json ${copy} | sha256sum`),
      before,
      'the dirty image was not written',
    );
  });

  test('between two later states (snapshot to snapshot): only what happened between them', async () => {
    const s1 = overlay(baseline, 's1.qcow2');
    guestWrites(s1, `echo one > etc/motd; echo a > etc/a`);
    const s2 = overlay(s1, 's2.qcow2');
    guestWrites(s2, `echo two > etc/motd; echo b > etc/b; rm etc/a`);
    const { diff } = await both(baseline, s2, s1);
    assert.deepEqual(keys(diff), ['file /etc/a deleted', 'file /etc/b added', 'file /etc/motd modified']);
    const motd = diff.items.find((i) => i.key === '/etc/motd')!;
    assert.ok(motd.kind === 'file' && motd.content?.kind === 'text' && /-one\n\+two/.test(motd.content.diff));
  });

  test('killed mid-read (kill -9): its mounts, loop devices and helpers go with it', async () => {
    const top = overlay(baseline, 'killed.qcow2');
    const script = readFileSync(fileURLToPath(COLLECT_SOURCE_URL));
    const body = JSON.stringify({
      protocol: 1,
      op: 'diff',
      rules: NOISE_RULES,
      workdir: join(dir, 'run'),
      tmpdir: join(dir, 'tmp'),
      lock: join(dir, 'lock'),
      disk: 'vda',
      baseline,
      index: join(dir, 'index-killed.sqlite'),
      from: { kind: 'baseline' },
      to: { kind: 'image', image: top },
      method: 'walk',
    });
    const child = spawn('sh', ['-c', collectCommand(script.length, 600)], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    child.stdin.end(Buffer.concat([script, Buffer.from(body)]));
    const helpers = () =>
      sh('ps -eo pid,args')
        .split('\n')
        .filter((l) => l.includes('qemu-storage-daemon') && l.includes(dir));
    const deadline = Date.now() + 60_000;
    while (helpers().length < 2) {
      assert.ok(Date.now() < deadline, 'the program never exported both views');
      await new Promise((r) => setTimeout(r, 20));
    }
    const exited = new Promise((r) => child.once('exit', r));
    // `timeout` (the shell exec'd it) runs the program as its child: kill the program itself.
    const program = Number(sh(`pgrep -P ${child.pid}`).trim().split('\n')[0]);
    assert.ok(program > 0, 'the program runs under timeout');
    process.kill(program, 'SIGKILL');
    await exited;
    const gone = Date.now() + 30_000;
    while (helpers().length || new RegExp(dir).test(sh('losetup -a || true'))) {
      assert.ok(Date.now() < gone, `left behind: ${helpers().join('; ')} ${sh('losetup -a || true')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.doesNotMatch(sh('cat /proc/mounts'), new RegExp(dir));
  });

  test('nothing is left behind: no mounts, no loop devices, no helpers, no temporary files', () => {
    assert.doesNotMatch(sh('cat /proc/mounts'), new RegExp(dir));
    assert.doesNotMatch(sh('losetup -a || true'), new RegExp(dir));
    assert.doesNotMatch(sh('ps -eo args'), new RegExp(`qemu-storage-daemon.*${dir}`));
    assert.deepEqual(existsSync(join(dir, 'tmp')) ? readdirSync(join(dir, 'tmp')) : [], []);
  });
});

function kindRank(line: string): number {
  return ['package', 'group', 'user', 'sudoers', 'file', 'unit', 'unit-state'].indexOf(line.split(' ')[0]!);
}
