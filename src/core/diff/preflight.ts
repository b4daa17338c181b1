/**
 * What the system diff needs on a host, as one preflight probe and its verdict: qemu-storage-daemon
 * with FUSE exports (/dev/fuse), loop devices, mount, python3 3.9+, e2fsprogs' debugfs (not needed,
 * reported), and root. libguestfs and the nbd kernel module are not used.
 */
import type { PreflightCheck } from '../../shared/contract/hosts.ts';

export const DIFF_PROBE = `id -u | sed 's/^/uid=/'
for t in qemu-storage-daemon losetup mount umount unshare; do if command -v $t >/dev/null 2>&1; then echo "$t=yes"; else echo "$t=no"; fi; done
[ -c /dev/fuse ] && echo fuse=yes || echo fuse=no
[ -e /dev/loop-control ] && echo loop=yes || echo loop=no
p=/usr/bin/python3; [ -x "$p" ] || p=python3
"$p" -c 'import sys, sqlite3, ctypes; print("python=%d.%d" % sys.version_info[:2])' 2>/dev/null || echo python=none`;

export function diffCheck(out: string): PreflightCheck {
  const kv: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const m = /^([a-z-]+)=(.*)$/.exec(line.trim());
    if (m) kv[m[1]!] = m[2]!;
  }
  const missing: string[] = [];
  const advice: string[] = [];
  if (kv['qemu-storage-daemon'] !== 'yes') {
    missing.push('qemu-storage-daemon');
    advice.push('qemu-storage-daemon (Debian/Ubuntu: qemu-system-common; Fedora/RHEL: qemu-storage-daemon)');
  }
  if (kv.fuse !== 'yes') {
    missing.push('/dev/fuse');
    advice.push('FUSE (load the fuse module; Debian: fuse3)');
  }
  if (kv.loop !== 'yes' || kv.losetup !== 'yes') {
    missing.push('loop devices');
    advice.push('loop devices (modprobe loop; util-linux for losetup)');
  }
  if (kv.mount !== 'yes' || kv.unshare !== 'yes') missing.push('mount/unshare (util-linux)');
  const py = kv.python && kv.python !== 'none' ? kv.python : null;
  const [maj, min] = (py ?? '0.0').split('.').map(Number);
  if (!py || maj! < 3 || (maj === 3 && min! < 9)) {
    missing.push(py ? `python ${py} (3.9+ needed)` : 'python3 (with sqlite3 and ctypes)');
    advice.push('python3 3.9 or newer');
  }
  const root = kv.uid === '0';
  const title = 'System diff (reads sandbox disks on the host)';
  if (missing.length)
    return {
      id: 'diff',
      title,
      status: 'warn',
      detail: `Fluid cannot show what changed in sandboxes on this host: missing ${missing.join(', ')}.`,
      advice: `Install ${advice.join(', ') || 'the missing tools'} on the host. libguestfs and nbd are not needed.`,
    };
  if (!root)
    return {
      id: 'diff',
      title,
      status: 'warn',
      detail:
        'Reading sandbox disks needs root on the host (loop devices, mounts); Fluid connects as another user.',
      advice: 'Connect to this host as root (or a user Fluid may run these tools as with sudo).',
    };
  return {
    id: 'diff',
    title,
    status: 'pass',
    detail: `qemu-storage-daemon with FUSE, loop devices and python ${py}: diffs are read on the host.`,
    advice: null,
  };
}
