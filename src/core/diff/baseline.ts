/**
 * The baseline: the disk state Fluid hands a sandbox over in — after its identity, CA trust and
 * proxy settings — so that Fluid's own work never shows up as the agent's change.
 *
 * Layering of a sandbox disk (for each disk target, e.g. vda; files in the sandbox's directory):
 *
 *     base copy (bases/<id>/vda.qcow2, shared, read-only)
 *       └─ [warm template layer (templates/…/vda.qcow2), restored sandboxes only, read-only]
 *            └─ <dir>/vda.qcow2        the sandbox's first overlay: boot + identity writes.
 *                                      FROZEN at the end of creation: this file IS the baseline.
 *                 └─ <dir>/vda.work.qcow2   the active layer from then on: everything the agent does,
 *                      └─ <dir>/snapshots/vda.<n>.qcow2 …   until a snapshot freezes it and the
 *                         sandbox continues on a new layer (src/core/sandboxes/snapshots.ts); a
 *                         restore starts a new layer on a frozen one. All of them sit above the
 *                         baseline, so every chain the sandbox ever runs on still contains it.
 *
 * The baseline is taken as the last creation phase, on both start paths (warm-template restore and
 * cold boot), by an external disk-only snapshot without libvirt metadata (`--no-metadata`, so
 * snapshot listings and reverts never see it), quiesced through the guest agent when it answers.
 * Rules for everything else that touches a sandbox's chain:
 *  - never commit, pull or rebase into `<dir>/<target>.qcow2` once `<target>.work.qcow2` exists (a
 *    `blockcommit` must be `--shallow` onto the active layer's immediate backing, which is never the
 *    baseline unless the active layer is `.work`);
 *  - snapshots freeze the active layer and continue above it; restoring one never touches the
 *    baseline, which is why a diff still has its reference after any snapshot restore. A snapshot's
 *    disk state is the layer it froze (recorded in its row), which the diff reads directly;
 *  - the baseline file is made read-only (0444) and removed only with the sandbox's directory.
 * The diff's own short-lived layers are `<target>.fluid-diff-<pid>.qcow2`, taken under the snapshot
 * steps' lock (`<dir>/snapshots/.lock`) and committed back (shallow) into the active layer below
 * them before the diff returns; a killed diff's leftover layer is committed back by the next one.
 */
import type { Host } from '../../shared/contract/hosts.ts';
import type { Baseline } from '../../shared/contract/diff.ts';
import { FluidError } from '../../shared/errors.ts';
import { shq, type HostConnection } from '../hosts/connection.ts';
import { virsh } from '../hosts/virsh.ts';

/** The active layer that sits on the baseline of one disk. */
export const workLayer = (dir: string, target: string): string => `${dir}/${target}.work.qcow2`;

const MARK = '@@fluid-baseline@@';

export function baselineScript(uri: string, domain: string, dir: string): string {
  const V = (a: string) => virsh(uri, a);
  return `set -u
d=${shq(domain)}; dir=${shq(dir)}
disks=$(${V('domblklist --details "$d"')} | awk '$1=="file" && $2=="disk" {print $3" "$4}')
[ -n "$disks" ] || { echo "the sandbox has no file-backed disk" >&2; exit 3; }
specs=""
while read -r t f; do
  case "$f" in "$dir"/*) ;; *) echo "disk $t ($f) is not in the sandbox's directory" >&2; exit 3;; esac
  specs="$specs --diskspec $t,file=$dir/$t.work.qcow2,driver=qcow2"
done <<EOF
$disks
EOF
mode=quiesced
if ! err=$(${V('snapshot-create-as "$d" --disk-only --atomic --no-metadata --quiesce $specs')} 2>&1); then
  mode=crash-consistent
  ${V('snapshot-create-as "$d" --disk-only --atomic --no-metadata $specs')} >/dev/null || exit 4
  echo "quiesce failed: $err" >&2
fi
echo ${MARK} "$mode"
while read -r t f; do chmod 0444 "$f" 2>/dev/null || true; echo "$t $f"; done <<EOF
$disks
EOF`;
}

export function parseBaselineOutput(out: string, dir: string): Omit<Baseline, 'sandboxId' | 'createdAt'> {
  const [, rest] = out.split(MARK);
  if (rest === undefined)
    throw new FluidError('INTERNAL', `The baseline step printed nothing usable:\n${out.slice(-500)}`);
  const lines = rest.trim().split('\n');
  const mode = lines.shift()!.trim();
  if (mode !== 'quiesced' && mode !== 'crash-consistent')
    throw new FluidError('INTERNAL', `The baseline step reported mode "${mode}".`);
  const disks = lines
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const sp = l.indexOf(' ');
      const target = l.slice(0, sp);
      return { target, baseline: l.slice(sp + 1), top: workLayer(dir, target) };
    });
  if (!disks.length) throw new FluidError('INTERNAL', 'The baseline step found no disk.');
  return { mode, disks };
}

/** Freeze the sandbox's disks as its baseline (one round trip). */
export async function takeBaseline(
  conn: HostConnection,
  host: Pick<Host, 'libvirtUri'>,
  domain: string,
  dir: string,
  signal?: AbortSignal,
): Promise<Omit<Baseline, 'sandboxId' | 'createdAt'>> {
  const r = await conn.exec(baselineScript(host.libvirtUri, domain, dir), { signal, timeoutMs: 120_000 });
  if (r.code !== 0)
    throw new FluidError(
      'INTERNAL',
      `Recording the sandbox's baseline (an external layer under its disk) failed (exit ${r.code}): ${r.stderr.toString().trim().slice(-1500)}`,
    );
  return parseBaselineOutput(r.stdout.toString(), dir);
}
