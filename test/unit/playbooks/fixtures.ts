/**
 * A realistic system diff (the shape the diff room produces) and a sandbox that answers the facts
 * generation asks for, for tests of generation and verification without a VM.
 */
import { createHash, randomUUID } from 'node:crypto';
import { DiffItemSchema, sortItems, type Diff, type DiffItem } from '../../../src/shared/contract/diff.ts';
import { itemId } from '../../../src/core/diff/model.ts';
import type { SandboxFacts } from '../../../src/core/playbooks/generate.ts';
import { FluidError } from '../../../src/shared/errors.ts';

export const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

const meta = (over: Record<string, unknown> = {}) => ({
  type: 'file',
  mode: '0644',
  uid: 0,
  gid: 0,
  user: 'root',
  group: 'root',
  size: 0,
  sha256: null,
  target: null,
  ...over,
});

/** What the sandbox holds: path → content. */
export type Disk = Map<string, string | Buffer>;

export function fileChange(
  disk: Disk,
  kind: 'file' | 'unit' | 'sudoers' | 'cron',
  path: string,
  change: 'added' | 'modified' | 'deleted',
  over: Record<string, unknown> = {},
): Record<string, unknown> {
  const content = disk.get(path);
  const after =
    change === 'deleted'
      ? null
      : meta({
          size: content ? Buffer.byteLength(content) : 0,
          sha256: content !== undefined ? sha(content) : null,
          ...((over.after as object) ?? {}),
        });
  const base: Record<string, unknown> = {
    kind,
    key: path,
    path,
    change,
    aspects: change === 'modified' ? ['content'] : [],
    before: change === 'added' ? null : meta({ sha256: 'b'.repeat(64), size: 3 }),
    after,
    content: null,
    package: null,
    sensitive: false,
    ...over,
  };
  base.after = after;
  return base;
}

export function buildTestDiff(raw: Array<Record<string, unknown>>, excluded: string[] = []): Diff {
  const items: DiffItem[] = sortItems(
    raw.map((r) => DiffItemSchema.parse({ ...r, id: itemId(String(r.kind), String(r.key)) })),
  );
  return {
    id: randomUUID(),
    sandboxId: randomUUID(),
    from: { kind: 'baseline' },
    to: { kind: 'now' },
    createdAt: new Date(0).toISOString(),
    createdBy: { door: 'test', id: 'fixture' },
    method: 'walk',
    consistency: { mode: 'stopped', detail: 'fixture' },
    items,
    excluded: excluded.map((k) => items.find((i) => i.key === k)!.id),
    counts: { items: items.length, byKind: {}, noise: 0, noiseByRule: {} },
    noiseRules: {},
    noise: null,
    stats: {},
    timings: {},
    warnings: [],
    filesystem: { type: 'ext4', partition: null },
    sha256: 'c'.repeat(64),
  };
}

/** The scenario of the lab tests, as items: a package, a site config, a unit, a user, cron, sysctl, a deletion. */
export function scenario(): { diff: Diff; disk: Disk; shadow: Map<string, string> } {
  const disk: Disk = new Map<string, string | Buffer>([
    ['/etc/nginx/sites-available/app', 'server {\n    listen 8080;\n    root /var/www/app;\n}\n'],
    ['/var/www/app/index.html', '<h1>app</h1>\n'],
    [
      '/etc/systemd/system/pbdemo.service',
      '[Unit]\nDescription=demo\n[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n',
    ],
    ['/etc/app/app.ini', '[db]\nhost = db.internal\npassword = hunter2-secret-xyz\n'],
    ['/etc/sudoers.d/deploy', 'deploy ALL=(root) NOPASSWD: /usr/bin/systemctl restart nginx\n'],
    ['/opt/tool/bin/tool', Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3])],
    ['/etc/templated.conf', 'value = {{ not_a_variable }}\n'],
  ]);
  const user = {
    uid: 1500,
    gid: 1500,
    group: 'deploy',
    gecos: '',
    home: '/home/deploy',
    shell: '/bin/bash',
    groups: ['www-data'],
    password: 'set',
    minDays: '0',
    maxDays: '99999',
    warnDays: '7',
    inactiveDays: '',
    expires: '',
  };
  const raw: Array<Record<string, unknown>> = [
    {
      kind: 'package',
      key: 'dpkg:nginx-light:amd64',
      manager: 'dpkg',
      name: 'nginx-light',
      arch: 'amd64',
      change: 'installed',
      before: null,
      after: { version: '1.22.1-9+deb12u1' },
    },
    {
      kind: 'package',
      key: 'dpkg:nginx-common:all',
      manager: 'dpkg',
      name: 'nginx-common',
      arch: 'all',
      change: 'installed',
      before: null,
      after: { version: '1.22.1-9+deb12u1' },
    },
    {
      kind: 'group',
      key: 'deploy',
      name: 'deploy',
      change: 'added',
      fields: [],
      before: null,
      after: { gid: 1500, members: [], password: 'locked' },
    },
    {
      kind: 'group',
      key: 'www-data',
      name: 'www-data',
      change: 'modified',
      fields: ['members'],
      before: { gid: 33, members: [], password: null },
      after: { gid: 33, members: ['deploy'], password: null },
    },
    {
      kind: 'user',
      key: 'deploy',
      name: 'deploy',
      change: 'added',
      fields: [],
      before: null,
      after: user,
      passwordChanged: true,
    },
    fileChange(disk, 'file', '/home/deploy', 'added', {
      after: { type: 'dir', mode: '0755', uid: 1500, gid: 1500, user: 'deploy', group: 'deploy' },
    }),
    fileChange(disk, 'sudoers', '/etc/sudoers.d/deploy', 'added', {
      after: { mode: '0440' },
      rules: { added: ['deploy ALL=(root) NOPASSWD: /usr/bin/systemctl restart nginx'], removed: [] },
    }),
    fileChange(disk, 'file', '/var/www/app', 'added', { after: { type: 'dir', mode: '0755' } }),
    fileChange(disk, 'file', '/var/www/app/index.html', 'added'),
    fileChange(disk, 'file', '/etc/nginx/sites-available/app', 'added', { package: null }),
    fileChange(disk, 'file', '/etc/nginx/sites-enabled/app', 'added', {
      after: { type: 'symlink', mode: '0777', target: '/etc/nginx/sites-available/app' },
    }),
    fileChange(disk, 'file', '/etc/app', 'added', { after: { type: 'dir', mode: '0755' } }),
    fileChange(disk, 'file', '/etc/app/app.ini', 'added', { after: { mode: '0640' } }),
    fileChange(disk, 'file', '/etc/issue.net', 'deleted'),
    fileChange(disk, 'file', '/opt/tool/bin/tool', 'added', { after: { mode: '0755' } }),
    fileChange(disk, 'file', '/etc/templated.conf', 'added'),
    fileChange(disk, 'file', '/etc/ssl/private/app.key', 'added', {
      sensitive: true,
      after: { mode: '0600' },
    }),
    fileChange(disk, 'unit', '/etc/systemd/system/pbdemo.service', 'added', {
      unit: 'pbdemo.service',
      unitType: 'service',
      dropIn: false,
    }),
    {
      kind: 'unit-state',
      key: 'pbdemo.service|/etc/systemd/system/multi-user.target.wants/pbdemo.service',
      unit: 'pbdemo.service',
      change: 'enabled',
      target: 'multi-user',
      link: '/etc/systemd/system/multi-user.target.wants/pbdemo.service',
    },
    fileChange(disk, 'cron', '/etc/cron.d/pbdemo', 'added', {
      user: null,
      entries: { added: ['*/5 * * * * root /usr/bin/true'], removed: [] },
    }),
    {
      kind: 'sysctl',
      key: 'net.ipv4.ip_forward',
      name: 'net.ipv4.ip_forward',
      before: null,
      after: '1',
      file: '/etc/sysctl.d/90-pbdemo.conf',
    },
  ];
  disk.set(
    '/etc/ssl/private/app.key',
    '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n',
  );
  // The sensitive file's hash has to match what the fake sandbox returns.
  const key = raw.find((r) => r.key === '/etc/ssl/private/app.key')!;
  key.after = { ...(key.after as object), sha256: sha(disk.get('/etc/ssl/private/app.key')!), size: 90 };
  return {
    diff: buildTestDiff(raw),
    disk,
    shadow: new Map([['deploy', '$6$salt$Zk3XaHashOfTheDeployPasswordNotForPlaybooks']]),
  };
}

export function fakeSandbox(
  disk: Disk,
  opts: {
    pythonApt?: boolean;
    active?: string[];
    shadow?: Map<string, string>;
    services?: Record<string, string[]>;
    packaged?: Record<string, { package: string; matches: boolean }>;
    missing?: string[];
  } = {},
): SandboxFacts & { reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    readFile: async (path, sha256) => {
      reads.push(path);
      const c = disk.get(path);
      if (c === undefined) throw new FluidError('NOT_FOUND', `${path} is not in the fixture`);
      const b = Buffer.isBuffer(c) ? c : Buffer.from(c, 'utf8');
      if (sha(b) !== sha256) throw new FluidError('CONFLICT', `${path} changed since the diff`);
      return b;
    },
    pythonApt: async () => opts.pythonApt ?? false,
    units: async (names) =>
      Object.fromEntries(
        names.map((n) => [
          n,
          {
            exists: ['nginx.service', 'pbdemo.service', ...(opts.active ?? [])].includes(n),
            active: (opts.active ?? ['nginx.service', 'pbdemo.service']).includes(n),
          },
        ]),
      ),
    packageServices: async (pkgs) => Object.fromEntries(pkgs.map((p) => [p, opts.services?.[p] ?? []])),
    packaged: async (paths) =>
      Object.fromEntries(paths.filter((p) => opts.packaged?.[p]).map((p) => [p, opts.packaged![p]!])),
    commands: async (names) => Object.fromEntries(names.map((n) => [n, !(opts.missing ?? []).includes(n)])),
    shadowHash: async (user) => opts.shadow?.get(user) ?? null,
  };
}
