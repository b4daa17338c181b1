/**
 * Derive a sandbox's libvirt domain from its source's definition: same virtual hardware as the guest
 * sees it (machine type, controllers, device addresses, firmware), a new identity (name, UUID, genid,
 * MAC), disks replaced by Fluid's overlays, one NIC on Fluid's isolated network, and everything that
 * ties the source to its host or could leak its secrets stripped (passthrough devices, graphics
 * passwords, SMBIOS serials, fixed sockets, CPU pinning, hugepages).
 */
import { FLUID_XMLNS } from '../hosts/virsh.ts';
import {
  append,
  attr,
  buildXml,
  child,
  children,
  el,
  kids,
  parseXml,
  removeWhere,
  root,
  setAttr,
  setText,
  tagOf,
  upsert,
  type XNode,
} from '../util/xml.ts';

export interface FluidLabel {
  kind: 'sandbox' | 'template';
  id: string;
  installation: string;
  source: string;
  base: string;
}

export interface DeriveOptions {
  name: string;
  uuid: string;
  genid: string;
  virtType: 'kvm' | 'qemu';
  vcpus?: number;
  memoryMiB?: number;
  /** Overlay path for each source disk target (vda, sdb, …). Every file-backed disk must be mapped. */
  disks: Record<string, string>;
  /** Per-sandbox copy of the UEFI variable store, when the source has one. */
  nvramPath?: string | null;
  /**
   * The NIC to put on Fluid's network; null builds the domain without a NIC (memory templates).
   * `pinIp` adds libvirt's clean-traffic filter so the guest cannot send from another address.
   */
  nic: { network: string; mac: string; pinIp?: string | null } | null;
  serialLog: string | null;
  label: FluidLabel;
  /** Spare PCIe root ports to add on q35 so a NIC can be hot-plugged (templates). */
  spareRootPorts?: number;
}

export interface DerivedDomain {
  xml: string;
  /** The NIC as an <interface> element template (MAC/network filled in later) for hot-plug. */
  nicXml: (mac: string, network: string) => string;
  /** What was removed or changed and why (shown in the creation log). */
  notes: string[];
}

/** Devices that tie a VM to its host or to a human session. */
const STRIP_DEVICES = new Set([
  'hostdev',
  'redirdev',
  'smartcard',
  'filesystem',
  'shmem',
  'parallel',
  'sound',
  'audio',
  'graphics',
  'tpm',
  'lease',
]);
/** Top-level elements that pin resources or carry host- or instance-specific identity. */
const STRIP_TOP = new Set([
  'uuid',
  'genid',
  'metadata',
  'cputune',
  'numatune',
  'memtune',
  'memoryBacking',
  'resource',
  'sysinfo',
  'seclabel',
  'keywrap',
  'launchSecurity',
  'maxMemory',
  'idmap',
  'throttlegroups',
]);

/** libvirt's stock filter pinning a NIC to its MAC and IP: no sandbox can take another's address. */
export const SPOOF_FILTER = 'clean-traffic';

const spoofFilter = (ip: string): XNode =>
  el('filterref', { filter: SPOOF_FILTER }, [el('parameter', { name: 'IP', value: ip })]);

/** An <interface> element (a template's NIC) pinned to `ip` with the clean-traffic filter. */
export function pinNicAddress(interfaceXml: string, ip: string): string {
  const doc = parseXml(interfaceXml);
  const nic = root(doc);
  if (tagOf(nic) !== 'interface') throw new Error('not an <interface> element');
  removeWhere(nic, (c) => tagOf(c) === 'filterref');
  append(nic, spoofFilter(ip));
  return buildXml(doc);
}

export function deriveDomain(sourceXml: string, o: DeriveOptions): DerivedDomain {
  const doc = parseXml(sourceXml);
  const dom = root(doc);
  if (tagOf(dom) !== 'domain') throw new Error('not a libvirt domain definition');
  const notes: string[] = [];

  setAttr(dom, 'type', o.virtType);
  setAttr(dom, 'id', null);
  const sourceName = (
    kids(child(dom, 'name') ?? el('name'))
      .map((c) => String(c['#text'] ?? ''))
      .join('') || o.label.source
  ).trim();

  for (const r of removeWhere(dom, (c) => STRIP_TOP.has(tagOf(c)))) {
    if (!['uuid', 'genid', 'metadata'].includes(tagOf(r)))
      notes.push(`removed <${tagOf(r)}> (host-specific or identity-bearing)`);
  }
  upsert(dom, el('name', {}, o.name));
  insertAfter(dom, 'name', el('uuid', {}, o.uuid));
  insertAfter(dom, 'uuid', el('genid', {}, o.genid));
  upsert(dom, el('title', {}, `Fluid sandbox of ${sourceName}`));
  upsert(
    dom,
    el(
      'description',
      {},
      `Disposable copy of ${sourceName}, managed by Fluid. Destroying it never touches the source.`,
    ),
  );
  insertAfter(
    dom,
    'description',
    el('metadata', {}, [
      el(`fluid:${o.label.kind}`, {
        'xmlns:fluid': FLUID_XMLNS,
        id: o.label.id,
        installation: o.label.installation,
        source: o.label.source,
        base: o.label.base,
      }),
    ]),
  );

  if (o.memoryMiB) {
    upsert(dom, el('memory', { unit: 'MiB' }, String(o.memoryMiB)));
    upsert(dom, el('currentMemory', { unit: 'MiB' }, String(o.memoryMiB)));
  }
  if (o.vcpus) {
    const v = child(dom, 'vcpu');
    if (v) {
      setText(v, String(o.vcpus));
      setAttr(v, 'current', null);
    } else upsert(dom, el('vcpu', { placement: 'static' }, String(o.vcpus)));
    removeWhere(dom, (c) => tagOf(c) === 'vcpus');
  }

  // CPU: under TCG there is no host CPU to pass through.
  const cpu = child(dom, 'cpu');
  if (o.virtType === 'qemu') {
    if (cpu && attr(cpu, 'mode') !== 'maximum')
      notes.push('CPU model set to "maximum" (TCG emulation cannot pass the host CPU through)');
    upsert(dom, el('cpu', { mode: 'maximum', check: 'none' }));
  } else if (cpu) {
    if (o.memoryMiB || o.vcpus) removeWhere(cpu, (c) => tagOf(c) === 'numa' || tagOf(c) === 'topology');
  }

  // Features: no KVM-only knobs under TCG; cap the TCG translation cache (1 GiB per VM by default).
  let features = child(dom, 'features');
  if (!features) {
    features = el('features', {}, [el('acpi')]);
    insertAfter(dom, 'os', features);
  }
  if (o.virtType === 'qemu') {
    removeWhere(features, (c) => ['kvm', 'pmu'].includes(tagOf(c)));
    if (!child(features, 'tcg')) append(features, el('tcg', {}, [el('tb-cache', { unit: 'MiB' }, '128')]));
  }

  // Firmware: a private copy of the UEFI variable store; SMBIOS pass-through of host data removed.
  const os = child(dom, 'os');
  if (os) {
    removeWhere(os, (c) => tagOf(c) === 'smbios');
    const nvram = child(os, 'nvram');
    if (nvram) {
      if (!o.nvramPath)
        throw new Error('the source has a UEFI variable store (nvram): a per-sandbox copy path is required');
      setText(nvram, o.nvramPath);
      for (const k of ['template', 'templateFormat', 'format', 'type']) setAttr(nvram, k, null);
    }
  }

  upsert(dom, el('on_poweroff', {}, 'destroy'));
  upsert(dom, el('on_reboot', {}, 'restart'));
  upsert(dom, el('on_crash', {}, 'destroy'));

  const devices = child(dom, 'devices');
  if (!devices) throw new Error('the source definition has no <devices>');

  // Disks: file-backed disks become our overlays; removable media is emptied.
  const mapped = new Set<string>();
  for (const disk of children(devices, 'disk')) {
    const device = attr(disk, 'device') ?? 'disk';
    const target = attr(child(disk, 'target'), 'dev') ?? '';
    if (device === 'cdrom' || device === 'floppy') {
      if (child(disk, 'source')) notes.push(`emptied ${device} ${target} (its media stays with the source)`);
      removeWhere(disk, (c) => ['source', 'backingStore'].includes(tagOf(c)));
      setAttr(disk, 'type', 'file');
      continue;
    }
    const overlay = o.disks[target];
    if (!overlay) throw new Error(`no overlay for the source's disk ${target}`);
    mapped.add(target);
    setAttr(disk, 'type', 'file');
    removeWhere(disk, (c) =>
      ['source', 'backingStore', 'auth', 'encryption', 'reservations', 'iotune', 'mirror'].includes(tagOf(c)),
    );
    const driver = child(disk, 'driver');
    if (driver) {
      setAttr(driver, 'type', 'qcow2');
      setAttr(driver, 'name', 'qemu');
      setAttr(driver, 'io', null);
    } else append(disk, el('driver', { name: 'qemu', type: 'qcow2' }));
    insertAfter(disk, 'driver', el('source', { file: overlay }));
    setAttr(disk, 'readonly', null);
    removeWhere(disk, (c) => tagOf(c) === 'readonly' || tagOf(c) === 'shareable');
  }
  for (const t of Object.keys(o.disks)) if (!mapped.has(t)) throw new Error(`the source has no disk ${t}`);

  // NICs: one, on Fluid's isolated network, keeping the guest-visible model and PCI address.
  const nics = children(devices, 'interface');
  const first = nics[0];
  const nicModel = attr(child(first ?? el('x'), 'model'), 'type') ?? 'virtio';
  const nicAddress = first ? child(first, 'address') : undefined;
  if (nics.length > 1) notes.push(`kept 1 of ${nics.length} network interfaces`);
  if (first && attr(first, 'type') !== 'network')
    notes.push(`moved the ${attr(first, 'type')} interface to Fluid's isolated network`);
  const makeNic = (mac: string, network: string, pinIp?: string | null): XNode =>
    el('interface', { type: 'network' }, [
      el('mac', { address: mac }),
      el('source', { network }),
      el('model', { type: nicModel }),
      ...(nicAddress ? [structuredClone(nicAddress)] : []),
      ...(pinIp ? [spoofFilter(pinIp)] : []),
    ]);
  removeWhere(devices, (c) => tagOf(c) === 'interface');
  if (o.nic) append(devices, makeNic(o.nic.mac, o.nic.network, o.nic.pinIp));

  // Strip host-bound devices.
  for (const r of removeWhere(devices, (c) => STRIP_DEVICES.has(tagOf(c))))
    notes.push(`removed <${tagOf(r)}>`);
  // Serial/console: pty only (no host sockets, files or TCP ports), with a log for boot diagnostics.
  let hasSerial = false;
  for (const s of [...children(devices, 'serial'), ...children(devices, 'console')]) {
    setAttr(s, 'type', 'pty');
    removeWhere(s, (c) => ['source', 'protocol', 'log'].includes(tagOf(c)));
    if (tagOf(s) === 'serial') {
      hasSerial = true;
      if (o.serialLog) append(s, el('log', { file: o.serialLog, append: 'off' }));
    }
  }
  if (!hasSerial) {
    append(
      devices,
      el('serial', { type: 'pty' }, [
        ...(o.serialLog ? [el('log', { file: o.serialLog, append: 'off' })] : []),
        el('target', { port: '0' }),
      ]),
    );
  }
  // Channels: keep the guest agent (add it if missing); drop SPICE agents and fixed socket paths.
  removeWhere(devices, (c) => tagOf(c) === 'channel' && attr(c, 'type') !== 'unix');
  let hasAgent = false;
  for (const ch of children(devices, 'channel')) {
    const name = attr(child(ch, 'target'), 'name');
    if (name === 'org.qemu.guest_agent.0') hasAgent = true;
    removeWhere(ch, (c) => tagOf(c) === 'source');
  }
  if (!hasAgent) {
    append(
      devices,
      el('channel', { type: 'unix' }, [el('target', { type: 'virtio', name: 'org.qemu.guest_agent.0' })]),
    );
    notes.push('added a qemu-guest-agent channel');
  }
  // vsock: a fixed CID would clash with the source's.
  for (const v of children(devices, 'vsock')) {
    removeWhere(v, (c) => tagOf(c) === 'cid');
    append(v, el('cid', { auto: 'yes' }));
  }
  // Entropy for fresh keys.
  if (!children(devices, 'rng').length)
    append(devices, el('rng', { model: 'virtio' }, [el('backend', { model: 'random' }, '/dev/urandom')]));
  // Video without graphics is pointless but harmless; keep what the guest expects.

  // q35: spare PCIe root ports for hot-plugging the NIC after a memory restore.
  const machine = attr(child(os ?? el('x'), 'type'), 'machine') ?? '';
  if (o.spareRootPorts && machine.includes('q35')) {
    for (let i = 0; i < o.spareRootPorts; i++)
      append(devices, el('controller', { type: 'pci', model: 'pcie-root-port' }));
  }

  return {
    xml: buildXml(doc),
    nicXml: (mac, network) => buildXml([makeNic(mac, network)]),
    notes,
  };
}

function insertAfter(parent: XNode, afterTag: string, node: XNode): void {
  const t = tagOf(parent);
  const all = kids(parent).filter((c) => tagOf(c) !== tagOf(node));
  const i = all.findIndex((c) => tagOf(c) === afterTag);
  all.splice(i >= 0 ? i + 1 : all.length, 0, node);
  parent[t] = all;
}
