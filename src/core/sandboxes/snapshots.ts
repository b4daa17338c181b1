/**
 * Sandbox snapshots: every kind Fluid offers (disk, disk+memory; of a running or a stopped sandbox)
 * restores on every libvirt Fluid supports.
 *
 * Layering, per disk (← reads "is the backing file of"):
 *
 *   shared base copy  ←  [warm template layer]  ←  <dir>/vda.qcow2  ←  <dir>/snapshots/vda.<n>.qcow2  ← …
 *   (read-only, never a write target)             (made at creation)   (made by snapshots and restores)
 *
 * - Taking snapshot S freezes each disk's ACTIVE layer: the domain continues on a new, empty layer
 *   on top of it (libvirt external snapshot, `--no-metadata`: libvirt keeps no snapshot record; Fluid
 *   records S's frozen layer per disk in the snapshots row, `detail.layers`). A frozen layer is never
 *   written again. A disk snapshot of a running sandbox is quiesced through the guest agent when it
 *   answers (file systems consistent), otherwise crash-consistent. A memory snapshot also saves the
 *   RAM to <dir>/snapshots/<snapshot id>.mem, a libvirt save image whose XML names the frozen layers.
 * - Restoring S: the domain is stopped; each disk gets a NEW empty layer on S's frozen layer (the
 *   frozen layer stays as it is, so S can be restored again and other snapshots stay valid) and the
 *   definition points at it. Then a memory snapshot is restored from its save image, rewritten onto
 *   the new layers (running, at the moment S was taken); a disk snapshot boots if the sandbox was
 *   running when the restore began, and stays shut off if it was stopped.
 * - Deleting S forgets it and removes its memory file. Layer files are garbage-collected after each
 *   restore and delete: a file in <dir>/snapshots/ that is neither in the domain's current chains nor
 *   in the chain of a remaining snapshot is removed. Nothing is ever merged (no blockcommit or
 *   blockpull), so the shared base can never receive a sandbox's writes.
 * - Only files under <dir>/snapshots/ are ever removed here. Layers other features record (e.g. a
 *   diff baseline frozen at creation) sit below every snapshot layer, stay in every chain, and
 *   survive restores; files they keep elsewhere in <dir> are never touched.
 * - Host-side steps that read and change a domain's disks take <dir>/snapshots/.lock (flock), and
 *   check that the disks are still what Fluid read before acting, so two Fluid processes never
 *   interleave snapshot work on one sandbox.
 *
 * Why not libvirt's own snapshot records: an internal snapshot of a running domain must include its
 * memory ("internal snapshot of a running VM must include the memory state"), and libvirt before 9.9
 * cannot revert to an external snapshot ("revert to external snapshot not supported yet"). External
 * layers with Fluid's own records behave the same on every version (the lab runs 9.0).
 */
import { randomBytes } from 'node:crypto';
import { FluidError } from '../../shared/errors.ts';
import { run, shq, type HostConnection } from '../hosts/connection.ts';
import { virsh } from '../hosts/virsh.ts';
import { attr, buildXml, child, children, parseXml, removeWhere, root, setAttr, tagOf } from '../util/xml.ts';
import { buildSaveHeader, parseSaveHeader } from './save-image.ts';

/** What a snapshots row records about a snapshot (its `detail` column). */
export interface SnapshotDetail {
  /** Disk target → the layer this snapshot froze. */
  layers: Record<string, string>;
  /** The save image of a memory snapshot. */
  memory: string | null;
}

export function parseDetail(json: string): SnapshotDetail | null {
  try {
    const d = JSON.parse(json) as Partial<SnapshotDetail>;
    if (!d.layers || typeof d.layers !== 'object' || !Object.keys(d.layers).length) return null;
    return { layers: d.layers, memory: typeof d.memory === 'string' ? d.memory : null };
  } catch {
    return null;
  }
}

export const snapshotDir = (sandboxDir: string) => `${sandboxDir}/snapshots`;

export interface BlockDevice {
  type: string;
  device: string;
  target: string;
  source: string;
}

/** `virsh -q domblklist --details`: type, device, target, then the source (which may hold spaces). */
export function parseBlockList(text: string): BlockDevice[] {
  const out: BlockDevice[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(\S+)\s+(\S+)\s+(\S+)\s+(.*?)\s*$/.exec(line);
    if (m) out.push({ type: m[1]!, device: m[2]!, target: m[3]!, source: m[4]! });
  }
  return out;
}

/** The file-backed disks a snapshot covers (cdroms and other devices are left out of it). */
export const snapshotDisks = (devs: BlockDevice[]) =>
  devs.filter((d) => d.type === 'file' && d.device === 'disk' && d.source && d.source !== '-');

/** A value inside a virsh --diskspec/--memspec: commas are doubled. */
const specValue = (s: string) => s.replace(/,/g, ',,');

const newLayer = (dir: string, target: string) =>
  `${snapshotDir(dir)}/${target}.${randomBytes(5).toString('hex')}.qcow2`;

/** The shell snippet whose output describes what a snapshot step depends on (state and disks). */
const probe = (uri: string, domain: string) =>
  `{ ${virsh(uri, `domstate ${shq(domain)}`)}; echo ---; ${virsh(uri, `domblklist --details ${shq(domain)}`)}; }`;

interface Probe {
  text: string;
  state: string;
  devices: BlockDevice[];
}

async function readProbe(conn: HostConnection, uri: string, domain: string, signal?: AbortSignal) {
  const out = await run(conn, `p=$(${probe(uri, domain)}) || exit $?; printf '%s' "$p"`, {
    what: `Reading the disks of ${domain}`,
    signal,
  });
  const [state, blk] = out.split('\n---\n');
  return { text: out, state: (state ?? '').trim(), devices: parseBlockList(blk ?? '') } satisfies Probe;
}

/** Prefix of a locked host step: flock on the snapshot dir, then check nothing moved meanwhile. */
function locked(uri: string, domain: string, dir: string, expected: Probe): string {
  const snap = snapshotDir(dir);
  return `set -e
mkdir -p ${shq(snap)}; chmod 755 ${shq(snap)}
exec 9>${shq(`${snap}/.lock`)}; flock 9
now=$(${probe(uri, domain)})
if [ "$now" != ${shq(expected.text)} ]; then
  echo "the sandbox's disks or state changed while Fluid was reading them" >&2; exit 75
fi`;
}

function conflictOr(err: unknown, what: string): never {
  if (err instanceof FluidError && (err.data as { exitCode?: number } | undefined)?.exitCode === 75)
    throw new FluidError(
      'CONFLICT',
      `${what}: the sandbox changed meanwhile (another Fluid process?). Try again.`,
    );
  throw err;
}

export interface Taken {
  detail: SnapshotDetail;
  /** Whether the snapshot holds memory (only a running sandbox has any). */
  withMemory: boolean;
  /** A disk snapshot of a running sandbox: the guest's file systems were frozen for it. */
  quiesced: boolean;
}

/**
 * Take an external snapshot: freeze each disk's active layer, continue on new layers, and with
 * `memory` (running sandboxes only) save the RAM beside them.
 */
export async function takeSnapshot(
  conn: HostConnection,
  uri: string,
  domain: string,
  dir: string,
  snapshotId: string,
  memory: boolean,
): Promise<Taken> {
  const p = await readProbe(conn, uri, domain);
  const running = p.state === 'running';
  if (!running && p.state !== 'shut off')
    throw new FluidError(
      'CONFLICT',
      `The sandbox's VM is ${p.state}; snapshots need it running or shut off.`,
    );
  const disks = snapshotDisks(p.devices);
  if (!disks.length) throw new FluidError('INTERNAL', `${domain} has no file-backed disk to snapshot.`);
  const withMemory = memory && running;
  const mem = withMemory ? `${snapshotDir(dir)}/${snapshotId}.mem` : null;
  const fresh = disks.map((d) => ({ ...d, layer: newLayer(dir, d.target) }));
  const specs = [
    ...fresh.map(
      (d) => `--diskspec ${shq(`${d.target},snapshot=external,driver=qcow2,file=${specValue(d.layer)}`)}`,
    ),
    ...p.devices
      .filter((d) => !fresh.some((f) => f.target === d.target))
      .map((d) => `--diskspec ${shq(`${d.target},snapshot=no`)}`),
  ].join(' ');
  const name = `fluid-${snapshotId.slice(0, 8)}`;
  const base = `snapshot-create-as ${shq(domain)} ${shq(name)} --no-metadata --atomic ${specs}`;
  const cleanup = `rm -f ${fresh.map((d) => shq(d.layer)).join(' ')}${mem ? ` ${shq(mem)}` : ''}`;
  let script: string;
  if (withMemory) {
    script = `${virsh(uri, `${base} --memspec ${shq(`file=${specValue(mem!)},snapshot=external`)}`)} >/dev/null || { rc=$?; ${cleanup}; exit $rc; }
echo quiesced=0`;
  } else if (running) {
    // Quiesced when the guest agent can freeze the file systems; crash-consistent otherwise.
    script = `if err=$(${virsh(uri, `${base} --disk-only --quiesce`)} 2>&1 >/dev/null); then echo quiesced=1; exit 0; fi
echo "quiesce failed, taking a crash-consistent snapshot: $err" >&2
${cleanup}
${virsh(uri, `${base} --disk-only`)} >/dev/null || { rc=$?; ${cleanup}; exit $rc; }
echo quiesced=0`;
  } else {
    script = `${virsh(uri, `${base} --disk-only`)} >/dev/null || { rc=$?; ${cleanup}; exit $rc; }
echo quiesced=0`;
  }
  const out = await run(conn, `${locked(uri, domain, dir, p)}\nset +e\n${script}`, {
    what: 'Creating the snapshot',
    timeoutMs: 600_000,
  }).catch((e: unknown) => conflictOr(e, 'Creating the snapshot'));
  return {
    detail: { layers: Object.fromEntries(disks.map((d) => [d.target, d.source])), memory: mem },
    withMemory,
    quiesced: /quiesced=1/.test(out),
  };
}

/**
 * Point each named disk of a domain definition at a new file and drop its recorded backing chain
 * (libvirt reads the new file's chain from the image itself). Throws when a target is missing.
 */
export function setDiskSources(xml: string, sources: Record<string, string>): string {
  const doc = parseXml(xml);
  const dom = root(doc);
  const devices = child(dom, 'devices');
  const seen = new Set<string>();
  for (const disk of devices ? children(devices, 'disk') : []) {
    const target = attr(child(disk, 'target'), 'dev');
    if (!target || !(target in sources)) continue;
    const src = child(disk, 'source');
    if (!src) throw new FluidError('INTERNAL', `Disk ${target} has no <source> in the domain definition.`);
    setAttr(src, 'file', sources[target]!);
    removeWhere(disk, (c) => tagOf(c) === 'backingStore');
    seen.add(target);
  }
  const missing = Object.keys(sources).filter((t) => !seen.has(t));
  if (missing.length)
    throw new FluidError('INTERNAL', `The domain definition has no disk ${missing.join(', ')}.`);
  return buildXml(doc);
}

export interface RestorePlan {
  /** Disk target → the new active layer made on the snapshot's frozen layer. */
  layers: Record<string, string>;
  /** The sandbox's VM was running when the restore began. */
  wasRunning: boolean;
}

/**
 * Put the domain back on a snapshot: stop it, new layers on the frozen ones, the definition on them,
 * and for a memory snapshot restore the saved RAM (the domain runs afterwards). A disk snapshot
 * leaves the domain shut off: booting it is the caller's (it has to wait for the guest).
 */
export async function restoreSnapshot(
  conn: HostConnection,
  uri: string,
  domain: string,
  dir: string,
  detail: SnapshotDetail,
): Promise<RestorePlan> {
  const V = (a: string) => virsh(uri, a);
  const p = await readProbe(conn, uri, domain);
  const wasRunning = p.state === 'running';
  const [inactive, saveHead] = await Promise.all([
    run(conn, V(`dumpxml --inactive ${shq(domain)}`), { what: `Reading ${domain}'s definition` }),
    detail.memory
      ? conn.exec(`head -c 1048576 ${shq(detail.memory)} | base64 -w0`, { maxOutputBytes: 4 * 1024 * 1024 })
      : null,
  ]);
  for (const target of Object.keys(detail.layers))
    if (!snapshotDisks(p.devices).some((d) => d.target === target))
      throw new FluidError(
        'CONFLICT',
        `The snapshot covers disk ${target}, which the sandbox no longer has; it cannot be restored.`,
      );
  const layers = Object.fromEntries(Object.keys(detail.layers).map((t) => [t, newLayer(dir, t)]));
  const xml = setDiskSources(inactive, layers);
  let header: Buffer | null = null;
  let streamOffset = 0;
  if (detail.memory) {
    if (!saveHead || saveHead.code !== 0 || !saveHead.stdout.length)
      throw new FluidError(
        'INTERNAL',
        `Cannot read the snapshot's memory image ${detail.memory}: ${saveHead?.stderr.toString().trim() || 'empty'}`,
      );
    const h = parseSaveHeader(Buffer.from(saveHead.stdout.toString(), 'base64'));
    // The image names the frozen layers; the restored domain must run on the new ones.
    header = buildSaveHeader(h, setDiskSources(h.xml, layers));
    streamOffset = h.streamOffset;
  }
  const fifo = `${snapshotDir(dir)}/restore.fifo`;
  const defFile = `${dir}/domain.xml`;
  const script = `${locked(uri, domain, dir, p)}
input=$(cat)
if [ "$(${V(`domstate ${shq(domain)}`)})" != "shut off" ]; then ${V(`destroy ${shq(domain)}`)} >/dev/null; fi
${Object.entries(layers)
  .map(([t, layer]) => `qemu-img create -q -f qcow2 -F qcow2 -b ${shq(detail.layers[t]!)} ${shq(layer)}`)
  .join('\n')}
printf '%s' "$input" | sed -n '1p' | base64 -d > ${shq(defFile)}
${V(`define ${shq(defFile)}`)} >/dev/null
${
  detail.memory
    ? `rm -f ${shq(fifo)}; mkfifo -m 600 ${shq(fifo)}
( printf '%s' "$input" | sed -n '2p' | base64 -d; tail -c +${streamOffset + 1} ${shq(detail.memory)} ) > ${shq(fifo)} &
writer=$!
rc=0; ${V(`restore ${shq(fifo)}`)} >/dev/null || rc=$?
kill $writer 2>/dev/null || true; wait $writer 2>/dev/null || true
rm -f ${shq(fifo)}
exit $rc`
    : ''
}`;
  const stdin = `${Buffer.from(xml).toString('base64')}\n${header ? header.toString('base64') : ''}\n`;
  await run(conn, script, { stdin, what: 'Restoring the snapshot', timeoutMs: 600_000 }).catch((e: unknown) =>
    conflictOr(e, 'Restoring the snapshot'),
  );
  return { layers, wasRunning };
}

/**
 * Remove snapshot files nothing needs: layers under <dir>/snapshots/ that are in no current chain of
 * the domain and in no chain of a remaining snapshot, and memory images of no remaining snapshot.
 * Returns the files removed. When anything cannot be read, nothing is removed.
 */
export async function collectGarbage(
  conn: HostConnection,
  uri: string,
  domain: string,
  dir: string,
  remaining: SnapshotDetail[],
): Promise<string[]> {
  const snap = snapshotDir(dir);
  const roots = remaining.flatMap((d) => Object.values(d.layers));
  const keepMem = remaining.flatMap((d) => (d.memory ? [d.memory] : []));
  const V = (a: string) => virsh(uri, a);
  const script = `set -e
[ -d ${shq(snap)} ] || exit 0
exec 9>${shq(`${snap}/.lock`)}; flock 9
input=$(cat)
defs=$( { ${V(`dumpxml ${shq(domain)}`)}; ${V(`dumpxml --inactive ${shq(domain)}`)}; } ) || exit 3
current=$(printf '%s\\n' "$defs" | sed -n "s/.*<source file='\\([^']*\\)'.*/\\1/p")
roots=$(printf '%s\\n%s\\n' "$current" "$(printf '%s\\n' "$input" | sed -n 's/^layer //p')")
keep=$(printf '%s\\n' "$input" | sed -n 's/^memory //p')
chain=""
while IFS= read -r f; do
  [ -n "$f" ] || continue
  c=$(qemu-img info -U --backing-chain "$f" | sed -n 's/^image: //p') || exit 3
  chain=$(printf '%s\\n%s\\n%s' "$chain" "$f" "$c")
done <<EOF
$roots
EOF
for f in ${shq(snap)}/*.qcow2 ${shq(snap)}/*.mem; do
  [ -e "$f" ] || continue
  case "$f" in *.mem) list=$keep;; *) list=$chain;; esac
  if ! printf '%s\\n' "$list" | grep -qxF -- "$f"; then rm -f -- "$f"; echo "$f"; fi
done`;
  const stdin = [...roots.map((r) => `layer ${r}`), ...keepMem.map((m) => `memory ${m}`)].join('\n') + '\n';
  const out = await run(conn, script, { stdin, what: 'Removing snapshot files no longer needed' });
  return out.split('\n').filter(Boolean);
}
