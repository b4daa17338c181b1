import { z } from 'zod';
import { call, event } from '../rpc.ts';
import { HostRef, Id, IsoDate } from './common.ts';
import { TaskSchema } from './tasks.ts';

export const LOCAL_HOST_ID = 'local';

export const HostAuthSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('local') }),
  z.object({
    type: z.literal('key'),
    /** Path of a private key file on the machine that runs the Fluid backend. */
    keyPath: z.string().min(1).max(4096),
  }),
  z.object({
    type: z.literal('agent'),
    /** SSH agent socket; defaults to $SSH_AUTH_SOCK of the backend. */
    socket: z.string().max(4096).optional(),
  }),
]);
export type HostAuth = z.infer<typeof HostAuthSchema>;

export const HostKeySchema = z.object({
  type: z.string(),
  /** OpenSSH-style fingerprint: "SHA256:" + unpadded base64 of the key blob's sha256. */
  fingerprint: z.string().startsWith('SHA256:'),
});

export const CheckStatus = z.enum(['pass', 'warn', 'fail']);
export const PreflightCheckSchema = z.object({
  id: z.string(),
  title: z.string(),
  status: CheckStatus,
  detail: z.string(),
  advice: z.string().nullable(),
});
export type PreflightCheck = z.infer<typeof PreflightCheckSchema>;

export const VirtType = z.enum(['kvm', 'qemu']);

export const HostFactsSchema = z.object({
  libvirtVersion: z.string().nullable(),
  hypervisorVersion: z.string().nullable(),
  qemuImgVersion: z.string().nullable(),
  virtType: VirtType.nullable(),
  virtTypeReason: z.string(),
  cpus: z.number().int().nullable(),
  cpuModel: z.string().nullable(),
  memoryMiB: z.number().int().nullable(),
  freeMemoryMiB: z.number().int().nullable(),
  storageDir: z.string(),
  diskFreeBytes: z.number().nullable(),
  diskTotalBytes: z.number().nullable(),
  networks: z.array(
    z.object({
      name: z.string(),
      active: z.boolean(),
      autostart: z.boolean(),
      bridge: z.string().nullable(),
    }),
  ),
  pools: z.array(
    z.object({
      name: z.string(),
      state: z.string(),
      capacityBytes: z.number().nullable(),
      availableBytes: z.number().nullable(),
    }),
  ),
});
export type HostFacts = z.infer<typeof HostFactsSchema>;

/**
 * Which libvirt this is: the machine (/etc/machine-id), its network namespace (the sandbox bridge
 * lives there) and libvirt's host UUID. Two host records with equal identities are one machine
 * registered twice (say, locally and over SSH): they share the sandbox network and its egress proxy.
 */
export const HostIdentitySchema = z.object({
  machineId: z.string().nullable(),
  netns: z.string().nullable(),
  libvirtUuid: z.string().nullable(),
  libvirtUri: z.string(),
});
export type HostIdentity = z.infer<typeof HostIdentitySchema>;

export const PreflightSchema = z.object({
  hostId: Id,
  checkedAt: IsoDate,
  ok: z.boolean(),
  checks: z.array(PreflightCheckSchema),
  facts: HostFactsSchema,
  /** Set by checks since identities were recorded. */
  identity: HostIdentitySchema.nullable().optional(),
});
export type Preflight = z.infer<typeof PreflightSchema>;

export const HostSchema = z.object({
  id: Id,
  name: z.string(),
  kind: z.enum(['local', 'ssh']),
  address: z.string(),
  port: z.number().int(),
  user: z.string(),
  auth: HostAuthSchema,
  hostKey: HostKeySchema.nullable(),
  libvirtUri: z.string(),
  storageDir: z.string(),
  createdAt: IsoDate,
  lastCheck: PreflightSchema.nullable(),
  /**
   * Other host records that are the same libvirt on the same machine (from their last checks): the
   * doors warn about it. They work side by side, sharing one sandbox network and one egress proxy.
   */
  sameMachineAs: z.array(z.string()).optional(),
});
export type Host = z.infer<typeof HostSchema>;

export const DiskSchema = z.object({
  target: z.string(),
  device: z.string(),
  type: z.string(),
  source: z.string().nullable(),
  format: z.string().nullable(),
  readonly: z.boolean(),
});

export const VmSchema = z.object({
  hostId: Id,
  hostName: z.string(),
  name: z.string(),
  uuid: z.string(),
  state: z.string(),
  running: z.boolean(),
  vcpus: z.number().int(),
  memoryMiB: z.number().int(),
  disks: z.array(DiskSchema),
  interfaces: z.array(
    z.object({
      type: z.string(),
      source: z.string().nullable(),
      mac: z.string().nullable(),
      model: z.string().nullable(),
    }),
  ),
  hasGuestAgent: z.boolean(),
  title: z.string().nullable(),
  /** Set when the domain was created by Fluid (sandbox, template); such domains are never sources. */
  fluid: z.object({ kind: z.string(), id: z.string(), installation: z.string().nullable() }).nullable(),
});
export type Vm = z.infer<typeof VmSchema>;

const RemovedFilesSchema = z.object({ paths: z.array(z.string()), bytes: z.number() });

export const CapacitySchema = z.object({
  hostId: Id,
  cpus: z.number().int().nullable(),
  memoryMiB: z.number().int().nullable(),
  freeMemoryMiB: z.number().int().nullable(),
  diskFreeBytes: z.number().nullable(),
  diskTotalBytes: z.number().nullable(),
  runningVms: z.number().int(),
  committedVcpus: z.number().int(),
  committedMemoryMiB: z.number().int(),
  virtType: VirtType.nullable(),
});
export type Capacity = z.infer<typeof CapacitySchema>;

const Address = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9.:_-]+$/, 'a host name or IP address (letters, digits, ".", ":", "-", "_")');
const User = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, 'a valid user name');
const Port = z.number().int().min(1).max(65535);
const Name = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "-", "_", starting with a letter or digit');

export const HostProbeSchema = z.object({
  address: z.string(),
  port: z.number().int(),
  hostKey: HostKeySchema,
  /** The already-registered host at this address, if any. */
  known: z.object({ id: Id, name: z.string(), matches: z.boolean() }).nullable(),
});

export const hostsContract = {
  'hosts.list': call(z.object({}), z.array(HostSchema), 'Registered hosts, the local one first.'),
  'hosts.get': call(z.object({ host: HostRef }), HostSchema, 'One host.'),
  'hosts.probe': call(
    z.object({ address: Address, port: Port.default(22) }),
    HostProbeSchema,
    "Fetch a host's SSH host key without logging in, to show its fingerprint before trusting it.",
  ),
  'hosts.checkKey': call(
    z.object({ keyPath: z.string().min(1).max(4096) }),
    z.object({ keyPath: z.string(), type: z.string(), fingerprint: z.string() }),
    "Check a private key file before a host is added: readable, a private key, no passphrase. Returns its type and its public key's fingerprint, nothing else.",
  ),
  'hosts.add': call(
    z.object({
      name: Name.optional(),
      address: Address,
      port: Port.default(22),
      user: User.default('root'),
      auth: HostAuthSchema.refine((a) => a.type !== 'local', 'remote hosts use a key file or the SSH agent'),
      /** The fingerprint the user confirmed. The host must present exactly this key. */
      acceptFingerprint: z.string().startsWith('SHA256:'),
      libvirtUri: z.string().min(1).max(512).default('qemu:///system'),
      storageDir: z.string().startsWith('/').max(1024).optional(),
    }),
    HostSchema,
    'Register a host over SSH after its fingerprint was confirmed; logs in once to prove access.',
  ),
  'hosts.update': call(
    z.object({
      host: HostRef,
      name: Name.optional(),
      auth: HostAuthSchema.optional(),
      libvirtUri: z.string().min(1).max(512).optional(),
      storageDir: z.string().startsWith('/').max(1024).optional(),
    }),
    HostSchema,
    "Change a host's name, credentials, libvirt URI or storage directory.",
  ),
  'hosts.trust': call(
    z.object({ host: HostRef, acceptFingerprint: z.string().startsWith('SHA256:') }),
    HostSchema,
    'Pin a new host key after a deliberate change (the old one is refused until then).',
  ),
  'hosts.remove': call(
    z.object({
      host: HostRef,
      /** Delete this installation's files on the host too (base copies, templates…); see hosts.removePreview. */
      clean: z.boolean().default(true),
    }),
    z.object({
      removed: z.literal(true),
      id: Id,
      cleaned: RemovedFilesSchema.nullable().optional(),
      kept: RemovedFilesSchema.nullable().optional(),
      note: z.string().nullable().optional(),
    }),
    "Forget a host (it must have no sandboxes) and, unless clean is false, delete this installation's files there.",
  ),
  'hosts.removePreview': call(
    z.object({ host: HostRef }),
    z.object({
      host: z.string(),
      storageDir: z.string(),
      reachable: z.boolean(),
      error: z.string().nullable(),
      /** Other host records reaching the same machine and directory: only this record's own files go. */
      sharedWith: z.array(z.string()),
      files: z.array(z.object({ path: z.string(), bytes: z.number(), what: z.string() })),
      totalBytes: z.number(),
    }),
    "What removing a host would delete there (this installation's files, with their size); changes nothing.",
  ),
  'hosts.check': call(
    z.object({ host: HostRef }),
    TaskSchema,
    'Start preflight checks (virsh, libvirt version, KVM or TCG, qemu-img, disk, memory, networks, pools) as a task.',
  ),
  'hosts.capacity': call(
    z.object({ host: HostRef }),
    CapacitySchema,
    'What the host has and what is committed.',
  ),
  'hosts.vms': call(z.object({ host: HostRef }), z.array(VmSchema), 'Every VM defined on the host.'),
  'sources.list': call(
    z.object({ host: HostRef.optional() }),
    z.object({
      vms: z.array(VmSchema),
      errors: z.array(z.object({ hostId: Id, hostName: z.string(), code: z.string(), message: z.string() })),
    }),
    'VMs that can be cloned into sandboxes (everything not created by Fluid), on one host or all.',
  ),
  'hosts.changed': event(
    z.object({ hostId: Id, change: z.enum(['added', 'updated', 'removed', 'checked']) }),
    'A host was added, changed, checked or removed.',
  ),
};
