/**
 * Warm templates: a source's base booted once (without a NIC, so it can never talk to anything),
 * brought fully up, and saved with its memory. New sandboxes restore that image instead of booting:
 * seconds instead of tens of seconds, most of all under TCG. The template's disk becomes the
 * read-only backing file of each restored sandbox's overlay.
 */
import { randomUUID } from 'node:crypto';
import { FluidError } from '../../shared/errors.ts';
import type { Host } from '../../shared/contract/hosts.ts';
import { run, shq, type HostConnection } from '../hosts/connection.ts';
import { virsh } from '../hosts/virsh.ts';
import type { TaskContext } from '../store/tasks.ts';
import type { BaseRecord, TemplateInfo } from './bases.ts';
import { deriveDomain } from './domain-xml.ts';
import { guestExec, waitForAgent } from './guest-agent.ts';
import { templateTrustScript } from './identity.ts';
import { hostLayout, templateDomainName } from './layout.ts';
import { buildSaveHeader, parseSaveHeader, rewriteDomainXml } from './save-image.ts';

export interface TemplateSpec {
  vcpus: number;
  memoryMiB: number;
  virtType: 'kvm' | 'qemu';
}

export const BOOT_TIMEOUT_MS = 300_000;

export async function buildTemplate(
  conn: HostConnection,
  host: Host,
  installation: string,
  base: BaseRecord,
  spec: TemplateSpec,
  ca: { publicKey(): string; fingerprint(): string },
  proxySetup: string,
  ctx: TaskContext,
): Promise<TemplateInfo> {
  const V = (a: string) => virsh(host.libvirtUri, a);
  const layout = hostLayout(host.storageDir, installation);
  const dir = layout.template(`${base.id}-${spec.vcpus}x${spec.memoryMiB}`);
  const save = `${dir}/memory.save`;
  const name = templateDomainName(base.id);
  const serialLog = `${dir}/serial.log`;
  if (/<nvram/.test(base.sourceXml))
    throw new FluidError(
      'VALIDATION',
      'Memory templates of UEFI guests are not supported yet; these sources cold-boot.',
    );
  const disks: Record<string, string> = {};
  // Multi-disk sources: every disk gets a template layer; the save image references them all.
  const layers = base.disks.map((d) => ({
    target: d.target,
    base: d.path,
    layer: `${dir}/${d.target}.qcow2`,
  }));
  for (const l of layers) disks[l.target] = l.layer;
  const derived = deriveDomain(base.sourceXml, {
    name,
    uuid: randomUUID(),
    genid: randomUUID(),
    virtType: spec.virtType,
    vcpus: spec.vcpus,
    memoryMiB: spec.memoryMiB,
    disks,
    nvramPath: null,
    nic: null,
    serialLog,
    label: { kind: 'template', id: base.id, installation, source: base.sourceName, base: base.id },
    spareRootPorts: 8,
  });
  const started = Date.now();
  ctx.progress(0.05, `Booting ${base.sourceName} once, without a network, for its memory template`);
  try {
    // Not cancelled midway: a cancel that only closed the connection could leave `virsh create`
    // finishing on the host after the cleanup below ran, and a template VM running that nobody owns.
    // It takes seconds; a cancel takes effect right after it, and the cleanup then finds the VM.
    await run(
      conn,
      `set -e; rm -rf ${shq(dir)}; mkdir -p ${shq(dir)}; chmod 755 ${shq(layout.root)} ${shq(dir)}; mkdir -p ${shq(layout.templates)}; chmod 755 ${shq(layout.templates)}
${layers.map((l) => `qemu-img create -q -f qcow2 -F qcow2 -b ${shq(l.base)} ${shq(l.layer)}`).join('\n')}
cat > ${shq(dir + '/domain.xml')}
${V(`create ${shq(dir + '/domain.xml')}`)} >/dev/null`,
      { stdin: derived.xml, what: 'Starting the template VM', timeoutMs: 120_000 },
    );
    if (ctx.signal.aborted) throw new FluidError('CANCELLED', 'The template build was cancelled.');
    await waitForAgent(conn, host.libvirtUri, name, BOOT_TIMEOUT_MS, ctx.signal);
    ctx.progress(0.6, 'Waiting for the guest to finish booting');
    // Fully up: systemd reports running (or degraded: a failed unit in the source is not ours to fix).
    await guestExec(
      conn,
      host.libvirtUri,
      name,
      '/bin/sh',
      [
        '-c',
        'command -v systemctl >/dev/null && systemctl is-system-running --wait >/dev/null 2>&1; sync; exit 0',
      ],
      {
        timeoutMs: 180_000,
        signal: ctx.signal,
        what: 'Waiting for the template VM to finish booting',
        diagnose: true,
      },
    );
    // Fluid's user and CA trust go into the template, so each restored clone only needs what is unique.
    // The template accepts no principal at all: each clone's identity step writes its own.
    const trust = await guestExec(conn, host.libvirtUri, name, '/bin/sh', ['-s'], {
      stdin: templateTrustScript(ca.publicKey(), proxySetup),
      timeoutMs: 120_000,
      signal: ctx.signal,
      what: "Preparing the template (Fluid's user and CA trust)",
      diagnose: true,
    });
    if (trust.exitCode !== 0)
      throw new FluidError(
        'INTERNAL',
        `Preparing the template failed: ${(trust.stderr || trust.stdout).trim().slice(-1000)}`,
      );
    const bootMs = Date.now() - started;
    ctx.progress(0.85, 'Saving the template with its memory');
    const t0 = Date.now();
    await run(
      conn,
      `${V(`save ${shq(name)} ${shq(save)}`)} >/dev/null && chmod 0444 ${layers.map((l) => shq(l.layer)).join(' ')} && chmod 0444 ${shq(save)}`,
      {
        what: 'Saving the template',
        signal: ctx.signal,
        timeoutMs: 600_000,
      },
    );
    const saveMs = Date.now() - t0;
    return {
      dir,
      disk: layers[0]!.layer,
      save,
      vcpus: spec.vcpus,
      memoryMiB: spec.memoryMiB,
      virtType: spec.virtType,
      domainName: name,
      nicXml: derived.nicXml('@@MAC@@', '@@NETWORK@@'),
      serialLog,
      bootMs,
      saveMs,
      caFingerprint: ca.fingerprint(),
      proxyConfigured: !!proxySetup,
    };
  } catch (err) {
    await conn.exec(`${V(`destroy ${shq(name)}`)} >/dev/null 2>&1; rm -rf ${shq(dir)}`).catch(() => {});
    throw err;
  }
}

export interface RestoreTarget {
  name: string;
  uuid: string;
  genid: string;
  dir: string;
  /** template layer path → the sandbox's overlay path */
  disks: Array<[string, string]>;
  serialLog: string;
  label: { id: string; installation: string; source: string; base: string };
}

/**
 * Restore a sandbox from the template: overlays on the template layers, the save image's XML
 * rewritten for the new identity, and the QEMU stream piped through a FIFO (no copy of the image).
 */
export async function restoreFromTemplate(
  conn: HostConnection,
  host: Host,
  t: TemplateInfo,
  target: RestoreTarget,
  signal?: AbortSignal,
): Promise<void> {
  const V = (a: string) => virsh(host.libvirtUri, a);
  const head = await conn.exec(`head -c 1048576 ${shq(t.save)} | base64 -w0`, {
    signal,
    maxOutputBytes: 4 * 1024 * 1024,
  });
  if (head.code !== 0)
    throw new FluidError('INTERNAL', `Cannot read the template image: ${head.stderr.toString().trim()}`);
  const header = parseSaveHeader(Buffer.from(head.stdout.toString(), 'base64'));
  let xml = rewriteDomainXml(header.xml, {
    name: target.name,
    uuid: target.uuid,
    genid: target.genid,
    replace: [...target.disks, [t.serialLog, target.serialLog]],
  });
  xml = xml.replace(
    /<fluid:template\b[^>]*\/>/,
    `<fluid:sandbox xmlns:fluid="https://fluid.dev/xmlns/libvirt/1" id="${target.label.id}" installation="${target.label.installation}" source="${target.label.source}" base="${target.label.base}"/>`,
  );
  xml = xml.replace(/<title>[^<]*<\/title>/, `<title>Fluid sandbox of ${target.label.source}</title>`);
  const newHeader = buildSaveHeader(header, xml);
  const fifo = `${target.dir}/restore.fifo`;
  const script = `set -e
hdr=$(cat)
${target.disks.map(([layer, overlay]) => `qemu-img create -q -f qcow2 -F qcow2 -b ${shq(layer)} ${shq(overlay)}`).join('\n')}
rm -f ${shq(fifo)}; mkfifo -m 600 ${shq(fifo)}
( printf '%s' "$hdr" | base64 -d; tail -c +${header.streamOffset + 1} ${shq(t.save)} ) > ${shq(fifo)} &
writer=$!
rc=0; ${V(`restore ${shq(fifo)}`)} >/dev/null || rc=$?
kill $writer 2>/dev/null || true; wait $writer 2>/dev/null || true
rm -f ${shq(fifo)}
exit $rc`;
  // Not cancelled midway: a cancel that only closed the connection could leave the restore finishing
  // on the host after the caller's cleanup, and a VM running that nobody owns. It takes seconds; a
  // cancel takes effect right after it (the caller's cleanup then finds the VM).
  const r = await conn.exec(script, { stdin: newHeader.toString('base64'), timeoutMs: 300_000 });
  if (signal?.aborted) throw new FluidError('CANCELLED', 'The sandbox creation was cancelled.');
  if (r.code !== 0)
    throw new FluidError(
      'INTERNAL',
      `Restoring the template failed: ${r.stderr.toString().trim().slice(0, 1500)}`,
    );
}
