/**
 * The system diff on the lab, the competing approaches side by side in one run (absolute times on a
 * shared 2-core TCG machine mislead; read the ratios):
 *
 *   fluid      Fluid's diff of a running sandbox: quiesced short-lived layer, FUSE exports, the fast path
 *              (allocation map above the baseline → inode tables → changed inodes → their paths)
 *   walk       the same host program comparing every file of both trees (the full walk)
 *   find       an in-guest `find` manifest over SSH, compared with the manifest taken at the baseline
 *              (what an in-guest approach needs; it trusts the guest's own tools)
 *   virt-diff  libguestfs (guestfs-tools), where it is installed and can boot its appliance
 *
 * For each base size (default 10k and 100k extra files), the bench builds a source VM from
 * fluid-lab-web's disk (an overlay: the lab's disk is never written) with N files under /srv/bench,
 * creates a sandbox of it through Fluid (cold boot; its baseline is recorded at creation), makes a
 * change of about 1000 files inside the guest (400 modified, 300 added, 200 deleted, 100 chmod),
 * and measures each approach `--repeat` times. Fluid's first diff of a sandbox also builds the
 * baseline's inode index (once per sandbox): it is shown on a line of its own.
 *
 * Usage (root, lab up, under the VM lock):
 *   flock /tmp/fluid-vm.lock node bench/diff.ts [--sizes 10000,100000] [--change 1000] [--repeat 3]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { createCore } from '../src/core/createCore.ts';
import { connectInProcess } from '../src/core/doors/inprocess.ts';
import { MemorySecretStore } from '../src/core/platform/secrets.ts';
import { createLogger } from '../src/core/platform/logger.ts';
import { compareDiffs, type Diff } from '../src/shared/contract/diff.ts';
import type { Sandbox } from '../src/shared/contract/sandboxes.ts';
import type { Task } from '../src/shared/contract/tasks.ts';
import { labHost, requireLab } from '../test/support/lab.ts';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10000,100000' },
    change: { type: 'string', default: '1000' },
    repeat: { type: 'string', default: '3' },
  },
});
const SIZES = values.sizes.split(',').map(Number);
const CHANGE = Number(values.change);
const REPEAT = Number(values.repeat);

const lab = await requireLab();
const web = lab.sources.find((s) => s.name === 'fluid-lab-web')!;
const dataDir = mkdtempSync(join(tmpdir(), 'fluid-bench-diff-'));
const work = mkdtempSync('/var/tmp/fluid-bench-diff-');
const core = createCore({
  dataDir,
  secrets: new MemorySecretStore(),
  logger: createLogger({ level: 'error' }),
});
const client = connectInProcess(core, { door: 'test', id: 'bench-diff' });
const sh = (cmd: string) => execFileSync('sh', ['-c', cmd], { maxBuffer: 256 * 1024 * 1024 }).toString();
const V = (args: string) => `virsh -q -c ${lab.libvirtUri} ${args}`;
const domains: string[] = [];
const sandboxes: string[] = [];

async function finish(task: Task): Promise<Task> {
  let last = task;
  for await (const t of client.stream('tasks.watch', { id: task.id })) last = t;
  if (last.status !== 'succeeded') throw new Error(`${last.title}: ${last.error?.message ?? last.status}`);
  return last;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** A shut-off source VM: fluid-lab-web's definition on an overlay of its disk with N extra files. */
function buildSource(n: number): string {
  const name = `fluid-bench-diff-${n}-${randomBytes(2).toString('hex')}`;
  const disk = join(work, `${name}.qcow2`);
  sh(`qemu-img create -q -f qcow2 -F qcow2 -b ${web.disk} ${disk}`);
  const w = mkdtempSync(join(work, 'w-'));
  // N files of a few hundred bytes in 100 directories, written through the kernel's ext4 driver.
  const py = `import os,sys
r=sys.argv[1]; n=int(sys.argv[2])
for d in range(100): os.makedirs('%s/srv/bench/d%02d'%(r,d), exist_ok=True)
for i in range(n):
  with open('%s/srv/bench/d%02d/f%06d'%(r,i%100,i),'w') as f: f.write(('file %d '%i)*40)`;
  writeFileSync(join(w, 'fill.py'), py);
  execFileSync(
    'unshare',
    [
      '--mount',
      '--propagation',
      'private',
      'sh',
      '-c',
      `set -e; : > ${w}/raw; mkdir ${w}/m
qemu-storage-daemon --blockdev '{"driver":"qcow2","node-name":"d","file":{"driver":"file","filename":"${disk}"}}' --export '{"type":"fuse","id":"e","node-name":"d","mountpoint":"${w}/raw","writable":true}' & q=$!
until [ "$(stat -c %s ${w}/raw)" -gt 0 ]; do sleep 0.02; done
mount -o loop ${w}/raw ${w}/m
/usr/bin/python3 ${w}/fill.py ${w}/m ${n}
df -i ${w}/m | tail -1 >&2
umount ${w}/m; kill $q; wait $q || true`,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  rmSync(w, { recursive: true, force: true });
  const xml = sh(V('dumpxml fluid-lab-web'))
    .replace(/<name>[^<]*<\/name>/, `<name>${name}</name>`)
    .replace(/<uuid>[^<]*<\/uuid>/, '')
    .replace(/<title>[^<]*<\/title>/, `<title>Fluid diff bench source (${n} extra files)</title>`)
    .replaceAll(web.disk, disk)
    .replace(/<mac address='[^']*'\/>/, '')
    .replaceAll(`${web.name}-serial.log`, `${name}-serial.log`);
  const file = join(work, `${name}.xml`);
  writeFileSync(file, xml);
  sh(V(`define ${file}`));
  domains.push(name);
  return name;
}

async function create(source: string): Promise<Sandbox> {
  const task = await client.call('sandboxes.create', {
    host: 'lab',
    source,
    name: `bench-${source.split('-')[3]}-${randomBytes(2).toString('hex')}`,
    start: 'cold',
  });
  sandboxes.push(task.target!);
  return (await finish(task)).result as Sandbox;
}

async function exec(sandbox: string, command: string): Promise<string> {
  const r = await client.call('sandboxes.exec', {
    sandbox,
    command,
    timeoutSeconds: 1800,
    maxOutputBytes: 64 * 1024 * 1024,
  });
  if (r.exitCode !== 0) throw new Error(`${command.slice(0, 100)}: exit ${r.exitCode}\n${r.stderr}`);
  return r.stdout;
}

const FIND = `find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp \\) -prune -o -printf '%p\\t%s\\t%T@\\t%m\\t%U\\t%G\\t%l\\n' | gzip -1 | base64 -w0`;

function manifest(b64: string): Map<string, string> {
  const text = execFileSync('sh', ['-c', 'base64 -d | gzip -d'], {
    input: b64,
    maxBuffer: 512 * 1024 * 1024,
  }).toString();
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (!line) continue;
    const tab = line.indexOf('\t');
    m.set(line.slice(0, tab), line.slice(tab + 1));
  }
  return m;
}

function compareManifests(a: Map<string, string>, b: Map<string, string>): number {
  let n = 0;
  for (const [p, v] of b) if (a.get(p) !== v) n++;
  for (const p of a.keys()) if (!b.has(p)) n++;
  return n;
}

const CHANGE_SCRIPT = (n: number, total: number) => `python3 - <<'EOF'
import os
n, total = ${n}, ${total}
mod, add, dele, chm = int(n*.4), int(n*.3), int(n*.2), n - int(n*.4) - int(n*.3) - int(n*.2)
f = lambda i: '/srv/bench/d%02d/f%06d' % (i % 100, i)
step = max(1, total // n)
idx = [i * step for i in range(n)]
for i in idx[:mod]:
    with open(f(i), 'a') as h: h.write('changed\\n')
for k in range(add):
    d = '/srv/app/lib%02d' % (k % 10); os.makedirs(d, exist_ok=True)
    with open('%s/m%04d.py' % (d, k), 'w') as h: h.write('x = %d\\n' % k)
for i in idx[mod:mod + dele]: os.unlink(f(i))
for i in idx[mod + dele:mod + dele + chm]: os.chmod(f(i), 0o600)
EOF
sync`;

function virtDiffProbe(): string | null {
  if (spawnSync('sh', ['-c', 'command -v virt-diff']).status !== 0)
    return 'not installed here: guestfs-tools is in Debian (apt-get install guestfs-tools: 105 packages), but libguestfs must boot its own appliance from a host kernel in /boot and modules in /lib/modules, and this machine has neither (its /dev/kvm cannot run stock kernels either). /work/shared/notes/lab.md measured 47.7 s for an 8.4k-file image with workarounds.';
  return null;
}

interface Row {
  size: number;
  fluid: number[];
  fluidHost: number[];
  first: number;
  walk: number[];
  find: number[];
  findBaseline: number;
  virt: number | string;
  items: number;
  noise: number;
  findChanged: number;
  equal: boolean;
  stats: Diff['stats'];
}

const rows: Row[] = [];
try {
  const virtWhy = virtDiffProbe();
  await client.call('hosts.add', labHost(lab));
  await finish(await client.call('hosts.check', { host: 'lab' }));
  for (const size of SIZES) {
    console.error(`# base with ${size} extra files: building the source VM`);
    const source = buildSource(size);
    console.error(`# creating a sandbox of it (cold boot)`);
    const sb = await create(source);
    console.error(`# in-guest manifest at the baseline`);
    const base = await timed(() => exec(sb.id, FIND));
    const baseManifest = manifest(base.value);
    console.error(`# the change: ${CHANGE} files (${baseManifest.size} entries in the guest)`);
    await exec(sb.id, CHANGE_SCRIPT(CHANGE, size));
    const run = async (method: 'auto' | 'walk') => {
      const t = await timed(async () => {
        const task = await finish(await client.call('diff.run', { sandbox: sb.id, method }));
        return client.call('diff.get', { sandbox: sb.id, diff: (task.result as { id: string }).id });
      });
      return { ms: t.ms, diff: t.value };
    };
    const first = await run('auto');
    const row: Row = {
      size,
      fluid: [],
      fluidHost: [],
      first: first.ms,
      walk: [],
      find: [],
      findBaseline: base.ms,
      virt: virtWhy ?? 'n/a',
      items: first.diff.counts.items,
      noise: first.diff.counts.noise,
      findChanged: 0,
      equal: true,
      stats: first.diff.stats,
    };
    let walked: Diff | null = null;
    for (let i = 0; i < REPEAT; i++) {
      console.error(`# round ${i + 1}/${REPEAT}`);
      const f = await run('auto');
      row.fluid.push(f.ms);
      row.fluidHost.push(f.diff.timings.total ?? 0);
      const w = await run('walk');
      row.walk.push(w.ms);
      walked = w.diff;
      const g = await timed(async () => compareManifests(baseManifest, manifest(await exec(sb.id, FIND))));
      row.find.push(g.ms);
      row.findChanged = g.value;
      row.equal &&= compareDiffs(f.diff, w.diff).equal;
    }
    row.stats = (
      walked ? { ...row.stats, walkPathsCompared: walked.stats.pathsCompared ?? 0 } : row.stats
    ) as Diff['stats'];
    if (!virtWhy) {
      // libguestfs reads the disks itself: the sandbox is stopped first (its layers then hold still).
      await client.call('sandboxes.stop', { sandbox: sb.id });
      const b = await client.call('diff.baseline', { sandbox: sb.id });
      const top = sh(
        `${V(`domblklist --details ${core.sandboxes.get(sb.id).domainName}`)} | awk '$2=="disk"{print $4}'`,
      ).trim();
      const t = await timed(async () =>
        spawnSync(
          'sh',
          [
            '-c',
            `LIBGUESTFS_BACKEND=direct timeout 900 virt-diff --format=qcow2 -a ${b!.disks[0]!.baseline} -A ${top} | wc -l`,
          ],
          {
            encoding: 'utf8',
          },
        ),
      );
      row.virt =
        t.value.status === 0
          ? t.ms
          : `failed: ${(t.value.stderr || '').trim().split('\n').slice(-2).join(' ')}`;
    }
    rows.push(row);
    await client.call('sandboxes.destroy', { sandbox: sb.id });
  }
} finally {
  for (const id of sandboxes) await client.call('sandboxes.destroy', { sandbox: id }).catch(() => {});
  await client.call('bases.prune', { host: 'lab' }).catch(() => {});
  for (const d of domains) spawnSync('sh', ['-c', `${V(`undefine ${d}`)} >/dev/null 2>&1`]);
  await core.close();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
}

const f = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
console.log(
  `\nSystem diff of a sandbox after a ${CHANGE}-file change (median of ${REPEAT}; ratio = time / Fluid's)`,
);
console.log(
  `${'extra files'.padStart(11)}  ${'approach'.padEnd(10)} ${'time'.padStart(9)} ${'vs fluid'.padStart(9)}  notes`,
);
for (const r of rows) {
  const fl = median(r.fluid);
  const line = (name: string, ms: number | string, note: string) =>
    console.log(
      `${String(r.size).padStart(11)}  ${name.padEnd(10)} ${(typeof ms === 'number' ? f(ms) : '-').padStart(9)} ${(typeof ms === 'number' ? `${(ms / fl).toFixed(2)}x` : '-').padStart(9)}  ${note}`,
    );
  line(
    'fluid',
    fl,
    `${r.items} items, ${r.noise} noise; host program ${f(median(r.fluidHost))}; ${r.stats.changedInodes} changed inodes, ${r.stats.pathsCompared} paths compared; same items as the walk: ${r.equal ? 'yes' : 'NO'}`,
  );
  line(
    'fluid 1st',
    r.first,
    `first diff of the sandbox: also builds the baseline's inode index (${r.stats.indexEntries ?? '?'} entries)`,
  );
  line('walk', median(r.walk), `${r.stats.walkPathsCompared} paths compared on each side`);
  line(
    'find',
    median(r.find),
    `in-guest manifest over SSH + comparison (${r.findChanged} entries differ); the baseline manifest took ${f(r.findBaseline)}`,
  );
  line(
    'virt-diff',
    typeof r.virt === 'number' ? r.virt : '-',
    typeof r.virt === 'number' ? 'libguestfs appliance' : r.virt,
  );
}
if (rows.length >= 2) {
  const a = rows[0]!;
  const b = rows[rows.length - 1]!;
  const growth = (xs: (r: Row) => number) => (xs(b) / xs(a)).toFixed(2);
  console.log(
    `\nGrowth from ${a.size} to ${b.size} extra files (same change): fluid ${growth((r) => median(r.fluid))}x, walk ${growth((r) => median(r.walk))}x, find ${growth((r) => median(r.find))}x.`,
  );
}
