/**
 * Host preflight: can Fluid run sandboxes here, and if not, what should the user do about it.
 * All probes go to the host in one round trip; the verdicts are pure functions of their output.
 */
import type { HostFacts, PreflightCheck } from '../../shared/contract/hosts.ts';
import { shq, type HostConnection } from './connection.ts';
import {
  compareVersions,
  keyValues,
  parseDf,
  parseMemAvailable,
  parseMemTotal,
  parseNetList,
  parseNodeInfo,
  parseVersion,
  runSections,
  virsh,
  type Section,
} from './virsh.ts';
import { DIFF_PROBE, diffCheck } from '../diff/preflight.ts';

export const MIN_LIBVIRT = '6.0.0'; // backup API (consistent copies of running sources)
export const RECOMMENDED_LIBVIRT = '7.2.0';

export interface PreflightInput {
  libvirtUri: string;
  storageDir: string;
  user: string;
  minFreeDiskGiB: number;
  minFreeMemoryMiB: number;
}

export function probeScript(p: PreflightInput): Record<string, string> {
  const V = (args: string) => virsh(p.libvirtUri, args);
  return {
    whoami: 'id -un; uname -srm',
    virsh: 'command -v virsh',
    version: V('version --daemon'),
    nodeinfo: V('nodeinfo'),
    meminfo: 'cat /proc/meminfo',
    qemuimg: 'qemu-img --version | head -n1',
    kvm: `if [ -e /dev/kvm ]; then echo dev=yes; else echo dev=no; fi
if [ -d /sys/module/kvm_pvm ]; then echo pvm=yes; else echo pvm=no; fi
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then echo rw=yes; else echo rw=no; fi
echo cpuflags=$(grep -c -E 'vmx|svm' /proc/cpuinfo 2>/dev/null || echo 0)
${V('domcapabilities --virttype kvm')} >/dev/null 2>&1 && echo domcaps=yes || echo domcaps=no`,
    disk: `d=${shq(p.storageDir)}; while [ ! -d "$d" ]; do d=$(dirname "$d"); done; echo "dir=$d"; if [ -w "$d" ]; then echo writable=yes; else echo writable=no; fi; df -PB1 "$d"`,
    networks: `${V('net-list --all')} && for n in $(${V('net-list --all --name')}); do echo "bridge $n $(${V(`net-info "$n"`)} | sed -n 's/^Bridge: *//p')"; done`,
    pools: `for p in $(${V('pool-list --all --name')}); do echo "@pool $p"; ${V('pool-info --bytes "$p"')}; done`,
    nwfilter: `${V('nwfilter-list')} 2>/dev/null | grep -qw clean-traffic && echo clean-traffic=yes || echo clean-traffic=no`,
    egress: `python3 -c 'import sys; print("python=%d.%d" % sys.version_info[:2])' 2>/dev/null || echo python=none; command -v nft >/dev/null && echo nft=yes || echo nft=no`,
    diff: DIFF_PROBE,
  };
}

const check = (
  id: string,
  title: string,
  status: PreflightCheck['status'],
  detail: string,
  advice: string | null = null,
): PreflightCheck => ({
  id,
  title,
  status,
  detail,
  advice,
});

export function evaluate(
  p: PreflightInput,
  s: Record<string, Section | undefined>,
): { checks: PreflightCheck[]; facts: HostFacts } {
  const checks: PreflightCheck[] = [];
  const ok = (name: string) => s[name]?.code === 0;
  const out = (name: string) => s[name]?.out ?? '';

  const version = parseVersion(out('version'));
  const node = parseNodeInfo(out('nodeinfo'));
  const freeMem = parseMemAvailable(out('meminfo'));
  // nodeinfo can report a single NUMA cell's memory; the kernel's total is authoritative.
  const totalMem = parseMemTotal(out('meminfo')) ?? node.memoryMiB;
  const kvm = keyValues(out('kvm').replace(/=/g, ': '));
  const diskInfo = parseDf(out('disk'));
  const diskKv = keyValues(out('disk').replace(/^(dir|writable)=/gm, '$1: '));

  // libvirt reachable
  const hasVirsh = ok('virsh');
  if (!hasVirsh) {
    checks.push(
      check(
        'virsh',
        'virsh is installed',
        'fail',
        'virsh was not found on the host.',
        'Install the libvirt client tools (Debian/Ubuntu: apt install libvirt-clients libvirt-daemon-system; Fedora/RHEL: dnf install libvirt-client libvirt).',
      ),
    );
  } else if (!ok('version') || !version.daemon) {
    checks.push(
      check(
        'virsh',
        `libvirt answers at ${p.libvirtUri}`,
        'fail',
        firstLine(out('version')) || 'virsh could not connect to libvirtd.',
        `Start libvirtd (systemctl enable --now libvirtd) and make sure ${p.user} may manage ${p.libvirtUri} (root, or a member of the "libvirt" group).`,
      ),
    );
  } else {
    checks.push(
      check(
        'virsh',
        `libvirt answers at ${p.libvirtUri}`,
        'pass',
        `libvirtd ${version.daemon}, ${version.hypervisor ?? 'unknown hypervisor'}.`,
      ),
    );
  }

  // libvirt version
  if (version.daemon) {
    if (compareVersions(version.daemon, MIN_LIBVIRT) < 0) {
      checks.push(
        check(
          'libvirt-version',
          'libvirt is recent enough',
          'fail',
          `libvirt ${version.daemon} is older than ${MIN_LIBVIRT}.`,
          'Upgrade libvirt: Fluid needs its backup API to copy running VMs consistently.',
        ),
      );
    } else if (compareVersions(version.daemon, RECOMMENDED_LIBVIRT) < 0) {
      checks.push(
        check(
          'libvirt-version',
          'libvirt is recent enough',
          'warn',
          `libvirt ${version.daemon} works; ${RECOMMENDED_LIBVIRT} or newer is recommended.`,
          'Upgrade libvirt when you can.',
        ),
      );
    } else {
      checks.push(check('libvirt-version', 'libvirt is recent enough', 'pass', `libvirt ${version.daemon}.`));
    }
  }

  // KVM or TCG
  let virtType: HostFacts['virtType'] = null;
  let virtTypeReason = 'unknown';
  if (version.daemon) {
    if (kvm.dev !== 'yes') {
      virtType = 'qemu';
      virtTypeReason = '/dev/kvm does not exist';
    } else if (kvm.pvm === 'yes') {
      virtType = 'qemu';
      virtTypeReason = '/dev/kvm is PVM (kvm_pvm), which cannot run stock guest kernels';
    } else if (kvm.domcaps !== 'yes') {
      virtType = 'qemu';
      virtTypeReason = 'libvirt reports no KVM domain capabilities';
    } else {
      virtType = 'kvm';
      virtTypeReason = 'hardware virtualisation through /dev/kvm';
    }
    checks.push(
      virtType === 'kvm'
        ? check(
            'virt-type',
            'Hardware acceleration (KVM)',
            'pass',
            `Sandboxes run with KVM: ${virtTypeReason}.`,
          )
        : check(
            'virt-type',
            'Hardware acceleration (KVM)',
            'warn',
            `Sandboxes will run under TCG emulation: ${virtTypeReason}. They work, but boot and run several times slower.`,
            'Enable virtualisation in the firmware and load kvm_intel or kvm_amd, or use a host with nested virtualisation.',
          ),
    );
  }

  // qemu-img
  const qemuImg = /version ([\d.]+)/.exec(out('qemuimg'))?.[1] ?? null;
  checks.push(
    ok('qemuimg') && qemuImg
      ? check('qemu-img', 'qemu-img is installed', 'pass', `qemu-img ${qemuImg}.`)
      : check(
          'qemu-img',
          'qemu-img is installed',
          'fail',
          'qemu-img was not found.',
          'Install qemu-utils (Debian/Ubuntu) or qemu-img (Fedora/RHEL).',
        ),
  );

  // disk
  const minDisk = p.minFreeDiskGiB * 1024 ** 3;
  if (!diskInfo) {
    checks.push(
      check(
        'disk',
        `Free space for ${p.storageDir}`,
        'fail',
        firstLine(out('disk')) || 'Could not measure free space.',
        `Create ${p.storageDir} or choose another storage directory for this host.`,
      ),
    );
  } else {
    const where =
      diskKv.dir && diskKv.dir !== p.storageDir
        ? ` (on ${diskKv.dir}, ${p.storageDir} does not exist yet)`
        : '';
    const writable = diskKv.writable === 'yes';
    const gib = (b: number) => `${(b / 1024 ** 3).toFixed(1)} GiB`;
    if (!writable) {
      checks.push(
        check(
          'disk',
          `Free space for ${p.storageDir}`,
          'fail',
          `${diskKv.dir ?? p.storageDir} is not writable by ${p.user}.`,
          `Connect as a user that may write there, or choose another storage directory.`,
        ),
      );
    } else if (diskInfo.freeBytes < Math.min(minDisk, 2 * 1024 ** 3)) {
      checks.push(
        check(
          'disk',
          `Free space for ${p.storageDir}`,
          'fail',
          `${gib(diskInfo.freeBytes)} free of ${gib(diskInfo.totalBytes)}${where}.`,
          'Free some space: base images and overlays need a few GiB.',
        ),
      );
    } else if (diskInfo.freeBytes < minDisk) {
      checks.push(
        check(
          'disk',
          `Free space for ${p.storageDir}`,
          'warn',
          `${gib(diskInfo.freeBytes)} free of ${gib(diskInfo.totalBytes)}${where}, below the ${p.minFreeDiskGiB} GiB you asked for.`,
          'Free some space or lower the threshold in Settings.',
        ),
      );
    } else {
      checks.push(
        check(
          'disk',
          `Free space for ${p.storageDir}`,
          'pass',
          `${gib(diskInfo.freeBytes)} free of ${gib(diskInfo.totalBytes)}${where}.`,
        ),
      );
    }
  }

  // memory
  if (freeMem === null) {
    checks.push(check('memory', 'Available memory', 'warn', 'Could not read /proc/meminfo.', null));
  } else {
    // GiB, as the capacity view shows memory.
    const mem = (mib: number) => (mib >= 1024 ? `${(mib / 1024).toFixed(1)} GiB` : `${mib} MiB`);
    const total = totalMem ? ` of ${mem(totalMem)}` : '';
    checks.push(
      freeMem < p.minFreeMemoryMiB
        ? check(
            'memory',
            'Available memory',
            'warn',
            `${mem(freeMem)} available${total}.`,
            'Sandboxes need memory of their own: stop idle VMs or lower the threshold in Settings.',
          )
        : check('memory', 'Available memory', 'pass', `${mem(freeMem)} available${total}.`),
    );
  }

  // networks
  const bridges = new Map<string, string>();
  for (const line of out('networks').split('\n')) {
    const m = /^bridge (\S+) ?(\S*)$/.exec(line.trim());
    if (m) bridges.set(m[1]!, m[2] ?? '');
  }
  const nets = parseNetList(
    out('networks')
      .split('\n')
      .filter((l) => !l.startsWith('bridge '))
      .join('\n'),
  ).map((n) => ({
    ...n,
    bridge: bridges.get(n.name) || null,
  }));
  if (version.daemon) {
    const active = nets.filter((n) => n.active);
    checks.push(
      active.length
        ? check(
            'networks',
            'Virtual networks',
            'pass',
            `${active.length} active: ${active.map((n) => n.name).join(', ')}${
              nets.length > active.length
                ? `; inactive: ${nets
                    .filter((n) => !n.active)
                    .map((n) => n.name)
                    .join(', ')}`
                : ''
            }.`,
          )
        : check(
            'networks',
            'Virtual networks',
            'warn',
            nets.length
              ? `No active network (inactive: ${nets.map((n) => n.name).join(', ')}).`
              : 'No libvirt networks are defined.',
            'Start one (virsh net-start default). Fluid creates its own isolated network for sandboxes, but source VMs usually need one.',
          ),
    );
  }

  // pools
  const pools: HostFacts['pools'] = [];
  for (const block of out('pools').split('@pool ').slice(1)) {
    const name = block.split('\n')[0]!.trim();
    const kv = keyValues(block);
    pools.push({
      name,
      state: kv.State ?? 'unknown',
      capacityBytes: kv.Capacity ? Number(kv.Capacity) || null : null,
      availableBytes: kv.Available ? Number(kv.Available) || null : null,
    });
  }
  if (version.daemon) {
    checks.push(
      pools.length
        ? check('pools', 'Storage pools', 'pass', pools.map((x) => `${x.name} (${x.state})`).join(', ') + '.')
        : check('pools', 'Storage pools', 'pass', `None defined; Fluid keeps its images in ${p.storageDir}.`),
    );
  }

  // Sandbox egress: the proxy runs on the host with python3; nft guards the host from its sandboxes.
  const eg = keyValues(out('egress').replace(/=/g, ': '));
  const py = eg.python && eg.python !== 'none' ? eg.python : null;
  if (!py || compareVersions(py, '3.9') < 0) {
    checks.push(
      check(
        'egress',
        'Sandbox egress proxy',
        'warn',
        py ? `python ${py} is older than 3.9.` : 'python3 is not installed.',
        'Install python3 (3.9 or newer) on the host: without it sandboxes have no outbound access at all (apt, curl fail).',
      ),
    );
  } else if (eg.nft !== 'yes') {
    checks.push(
      check(
        'egress',
        'Sandbox egress proxy',
        'warn',
        `python ${py}; nft is missing, so sandboxes can reach services on the host's sandbox-network address.`,
        'Install nftables on the host.',
      ),
    );
  } else {
    checks.push(
      check(
        'egress',
        'Sandbox egress proxy',
        'pass',
        `python ${py} for the proxy; nftables to fence sandboxes off the host.`,
      ),
    );
  }

  // The system diff reads sandbox disks on the host (qemu-storage-daemon FUSE exports, loop mounts).
  if (s.diff) checks.push(diffCheck(out('diff')));

  // Address pinning: libvirt's clean-traffic filter on each sandbox NIC (the proxy and the egress
  // allowlists tell sandboxes apart by address).
  if (/clean-traffic=yes/.test(out('nwfilter'))) {
    checks.push(
      check(
        'spoofing',
        'Sandbox addresses are pinned',
        'pass',
        "libvirt's clean-traffic filter is available.",
      ),
    );
  } else {
    checks.push(
      check(
        'spoofing',
        'Sandbox addresses are pinned',
        'warn',
        "libvirt's clean-traffic network filter is not available, so a sandbox could take another sandbox's address (and its egress allowances).",
        'Enable libvirt’s nwfilter driver (libvirtd, or virtnwfilterd with modular daemons) and install ebtables.',
      ),
    );
  }

  return {
    checks,
    facts: {
      libvirtVersion: version.daemon,
      hypervisorVersion: version.hypervisor,
      qemuImgVersion: qemuImg,
      virtType,
      virtTypeReason,
      cpus: node.cpus,
      cpuModel: node.cpuModel,
      memoryMiB: totalMem,
      freeMemoryMiB: freeMem,
      storageDir: p.storageDir,
      diskFreeBytes: diskInfo?.freeBytes ?? null,
      diskTotalBytes: diskInfo?.totalBytes ?? null,
      networks: nets,
      pools,
    },
  };
}

function firstLine(s: string): string {
  return s.trim().split('\n')[0]?.trim() ?? '';
}

export async function runPreflight(
  conn: HostConnection,
  p: PreflightInput,
  opts: { signal?: AbortSignal; progress?: (f: number, m: string) => void } = {},
): Promise<{ checks: PreflightCheck[]; facts: HostFacts }> {
  opts.progress?.(0.2, 'Probing libvirt, KVM, qemu-img, disk, memory, networks and pools');
  const sections = await runSections(conn, probeScript(p), { signal: opts.signal, timeoutMs: 60_000 });
  opts.progress?.(0.9, 'Evaluating');
  return evaluate(p, sections);
}
