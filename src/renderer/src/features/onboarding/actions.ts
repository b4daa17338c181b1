/** What the host wizard's steps do against the backend. */
import { PreflightSchema } from '../../../../shared/contract/hosts.ts';
import type { Task } from '../../../../shared/contract/tasks.ts';
import { toErrorInfo } from '../../lib/errors.ts';
import { rpc } from '../../stores/connection.ts';
import { upsertHost } from '../../stores/hosts.ts';
import { upsertTask } from '../../stores/tasks.ts';
import { toast } from '../../stores/toasts.ts';
import { addInput, type HostWizardState } from './state.ts';
import type { StepContext } from './wizard.ts';

type Ctx = StepContext<HostWizardState>;

/**
 * Before the host key is fetched and shown: can Fluid use the key file? A path that is missing,
 * unreadable, not a private key or locked by a passphrase is said next to the field, on this step.
 */
export async function checkKeyFile(ctx: Ctx): Promise<boolean> {
  const d = ctx.get().draft;
  if (d.authType !== 'key') {
    ctx.update({ keyCheck: null });
    return true;
  }
  ctx.update({ checkingKey: true });
  try {
    const keyCheck = await rpc().call('hosts.checkKey', { keyPath: d.keyPath.trim() });
    ctx.update({ keyCheck, checkingKey: false });
    return true;
  } catch (err) {
    const e = toErrorInfo(err);
    ctx.update((s) => ({
      keyCheck: null,
      checkingKey: false,
      fieldErrors: { ...s.fieldErrors, keyPath: e.message },
    }));
    if (e.code !== 'VALIDATION') throw err;
    return false;
  }
}

export async function probeHost(ctx: Ctx): Promise<void> {
  const d = ctx.get().draft;
  ctx.update({ probing: true, probe: null, probeError: null, addError: null });
  try {
    const probe = await rpc().call('hosts.probe', { address: d.address.trim(), port: Number(d.port) });
    ctx.update({ probe, probing: false });
  } catch (err) {
    ctx.update({ probeError: toErrorInfo(err), probing: false });
  }
}

/** "I trust this host key": register the host, requiring exactly the confirmed key. */
export async function registerHost(ctx: Ctx): Promise<boolean> {
  const s = ctx.get();
  if (!s.probe) return false;
  ctx.update({ addError: null });
  try {
    const host = await rpc().call('hosts.add', addInput(s.draft, s.probe.hostKey.fingerprint));
    upsertHost(host);
    ctx.update({ hostId: host.id, preflight: null, checkTaskId: null, sources: null });
    toast({
      kind: 'success',
      title: 'Host added',
      message: `${host.name} is registered; its key is pinned.`,
    });
    return true;
  } catch (err) {
    const e = toErrorInfo(err);
    const fieldErrors: HostWizardState['fieldErrors'] = {};
    if (e.code === 'VALIDATION' && /key/i.test(e.message)) fieldErrors.keyPath = e.message;
    if (e.code === 'CONFLICT' && /named/.test(e.message)) fieldErrors.name = e.message;
    if (e.code === 'AUTH_FAILED') fieldErrors.keyPath = 'The host refused this key for this user.';
    ctx.update({ addError: e, fieldErrors });
    return false;
  }
}

export async function startCheck(ctx: Ctx): Promise<void> {
  const hostId = ctx.get().hostId;
  if (!hostId) return;
  ctx.update({ preflight: null, checkTaskId: null });
  const task = await rpc().call('hosts.check', { host: hostId });
  upsertTask(task);
  ctx.update({ checkTaskId: task.id });
}

/** Called by the preflight step when its task ends. */
export function taskFinished(ctx: Ctx, task: Task): void {
  if (task.status !== 'succeeded') return;
  const parsed = PreflightSchema.safeParse(task.result);
  if (parsed.success) ctx.update({ preflight: parsed.data });
}

export async function loadSources(ctx: Ctx): Promise<void> {
  const hostId = ctx.get().hostId;
  if (!hostId) return;
  ctx.update({ sources: null, sourcesError: null });
  try {
    const r = await rpc().call('sources.list', { host: hostId });
    ctx.update({ sources: r.vms });
  } catch (err) {
    ctx.update({ sourcesError: toErrorInfo(err) });
  }
}
