/**
 * New sandbox: host, source, size, lifetime, egress and start mode; on submit the dialog turns into
 * the creation's live progress (tasks.watch), opens the sandbox on success, and offers Retry on failure.
 */
import { useEffect, useMemo, useState, type FormEvent } from 'react';
import type { Task } from '../../../../shared/contract/tasks.ts';
import type { Vm } from '../../../../shared/contract/hosts.ts';
import { Icon } from '../../components/Icon.tsx';
import { TaskProgress } from '../../components/TaskProgress.tsx';
import { Callout, ErrorBox, Field, Modal, Spinner } from '../../components/ui.tsx';
import { issuesByField, toErrorInfo, validationIssues, type ErrorInfo } from '../../lib/errors.ts';
import { formatMiB, plural } from '../../lib/format.ts';
import { useBackendQuery, useWatchedTask } from '../../lib/hooks.ts';
import { navigate } from '../../lib/route.ts';
import { pendingApprovals, promptApprovals, useApprovals } from '../../stores/approvals.ts';
import { rpc } from '../../stores/connection.ts';
import { READINESS_LABEL, readiness, useHosts } from '../../stores/hosts.ts';
import { useSettings } from '../../stores/settings.ts';
import { showTaskInView, upsertTask } from '../../stores/tasks.ts';
import { toast } from '../../stores/toasts.ts';
import {
  AUTO_HOST,
  parseWhole,
  validateCreate,
  backToCreateForm,
  closeCreateDialog,
  followCreateTask,
  patchCreateForm,
  setSubmitting,
  useCreateDialog,
  type CreateInput,
  type StartMode,
} from './createDialog.ts';

const START_MODES: Array<{ value: StartMode; label: string; help: string }> = [
  { value: 'auto', label: 'Auto', help: 'Restore the warm template when it fits, otherwise boot.' },
  { value: 'restore', label: 'Restore', help: 'Only from a warm template (fails if none is ready).' },
  { value: 'cold', label: 'Cold boot', help: 'Always boot from the disks.' },
];

function allowLines(text: string): string[] {
  return text
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** A source VM as the form offers it: on one host, or (Fluid placing it) on each host that has it. */
interface SourceOption {
  vm: Vm;
  hosts: string[];
}

function CreateFormView() {
  const form = useCreateDialog((s) => s.form);
  const order = useHosts((s) => s.order);
  const hostsById = useHosts((s) => s.byId);
  const defaultTtl = useSettings((s) => s.settings?.sandboxes.defaultTtlMinutes ?? 240);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [fieldErrors, setFieldErrors] = useState<Record<string, string>>({});
  const busy = useCreateDialog((s) => s.submitting);

  // The host: as chosen. Otherwise the only usable one; with several, Fluid places the sandbox (never
  // "the newest host" by accident).
  const hosts = order.map((id) => hostsById[id]!).filter(Boolean);
  const usable = order.filter((id) => ['ready', 'warnings'].includes(readiness(hostsById[id]!)));
  const fallback = usable.length === 1 ? usable[0]! : order.length === 1 ? order[0]! : AUTO_HOST;
  const hostId =
    form.hostId === AUTO_HOST || (form.hostId && hostsById[form.hostId]) ? form.hostId : fallback;
  const auto = hostId === AUTO_HOST;
  const host = auto ? undefined : hostsById[hostId];

  const sources = useBackendQuery(
    hostId ? (b, signal) => b.call('sources.list', auto ? {} : { host: hostId }, { signal }) : null,
    [hostId],
  );
  // Only this host's VMs (the previous host's list stays in place while the new one loads); with Fluid
  // placing it, each source once, with the hosts that have it.
  const options = useMemo<SourceOption[]>(() => {
    const vms = (sources.data?.vms ?? []).filter((v) => !v.fluid && (auto || v.hostId === hostId));
    const byName = new Map<string, SourceOption>();
    for (const v of vms) {
      const o = byName.get(v.name);
      if (o) o.hosts.push(v.hostName);
      else byName.set(v.name, { vm: v, hosts: [v.hostName] });
    }
    return [...byName.values()];
  }, [sources.data, hostId, auto]);
  // Never a running VM by default: it may well be production. A shut-off one, or nothing chosen yet.
  const chosen = options.find((o) => o.vm.name === form.source);
  const vm = chosen?.vm ?? (form.source ? undefined : options.find((o) => !o.vm.running)?.vm);
  const source = vm?.name ?? form.source;

  const vcpus = form.vcpus ?? (vm ? String(vm.vcpus) : '');
  const memory = form.memoryMiB ?? (vm ? String(vm.memoryMiB) : '');
  const ttl = form.ttlMinutes ?? String(defaultTtl);
  const allow = allowLines(form.allow);

  async function submit(e: FormEvent) {
    e.preventDefault();
    const v = parseWhole(vcpus);
    const m = parseWhole(memory);
    const t = parseWhole(ttl);
    const input: CreateInput = {
      ...(auto ? {} : { host: hostId }),
      source,
      ...(form.name.trim() ? { name: form.name.trim() } : {}),
      // The source's own size is the backend's default: only send what was changed.
      ...(form.vcpus !== null && v !== vm?.vcpus ? { vcpus: v ?? Number.NaN } : {}),
      ...(form.memoryMiB !== null && m !== vm?.memoryMiB ? { memoryMiB: m ?? Number.NaN } : {}),
      ttlMinutes: t ?? Number.NaN,
      allow,
      start: form.start,
    };
    const errs = validateCreate(input, { vcpus, memoryMiB: memory, ttlMinutes: ttl, source });
    setFieldErrors(errs);
    setError(null);
    if (Object.keys(errs).length || busy) return;
    setSubmitting(true);
    try {
      const task = await rpc().call('sandboxes.create', input);
      upsertTask(task);
      followCreateTask(task.id, input);
    } catch (err) {
      const info = toErrorInfo(err);
      const issues = issuesByField(validationIssues(info));
      if (Object.keys(issues).length) {
        const mapped: Record<string, string> = {};
        for (const [path, msg] of Object.entries(issues)) mapped[path.split('.')[0]!] ??= msg;
        setFieldErrors(mapped);
      } else setError(info);
    } finally {
      setSubmitting(false);
    }
  }

  if (!hosts.length)
    return (
      <p className="muted">
        No hosts yet. <a href="#/onboarding">Add a host</a> first.
      </p>
    );

  return (
    <form id="create-sandbox-form" className="form-grid" onSubmit={(e) => void submit(e)} noValidate>
      <div className="form-cols">
        <Field
          label="Host"
          error={fieldErrors.host}
          help={
            auto
              ? 'Fluid puts it on a host that has the source and the most free memory, and says why.'
              : host
                ? `${READINESS_LABEL[readiness(host)]}${host.kind === 'local' ? ' · this machine' : ''}`
                : null
          }
        >
          {(p) => (
            <select
              {...p}
              className="input"
              value={hostId}
              onChange={(e) =>
                patchCreateForm({ hostId: e.target.value, source: '', vcpus: null, memoryMiB: null })
              }
            >
              {hosts.length > 1 && <option value={AUTO_HOST}>Fluid chooses (most free capacity)</option>}
              {hosts.map((h) => (
                <option key={h.id} value={h.id}>
                  {h.name}
                  {readiness(h) === 'failed'
                    ? ' (not ready)'
                    : readiness(h) === 'unchecked'
                      ? ' (not checked)'
                      : ''}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field
          label="Source VM"
          error={fieldErrors.source}
          help="Fluid copies its disks once and never writes to it. Fluid's own VMs are not sources."
        >
          {(p) =>
            sources.loading && !sources.data ? (
              <div className="input-like">
                <Spinner label="Listing source VMs" />{' '}
                <span className="muted">Listing VMs on {host?.name ?? 'every host'}…</span>
              </div>
            ) : (
              <select
                {...p}
                className="input"
                value={source}
                disabled={!options.length}
                onChange={(e) => patchCreateForm({ source: e.target.value, vcpus: null, memoryMiB: null })}
              >
                {!options.length ? (
                  <option value="">No source VMs {auto ? 'on any host' : 'on this host'}</option>
                ) : (
                  !vm && (
                    <option value="" disabled>
                      Choose a source VM
                    </option>
                  )
                )}
                {options.map(({ vm: v, hosts: on }) => (
                  <option key={v.uuid} value={v.name}>
                    {v.name} — {v.state} · {v.vcpus} vCPU · {formatMiB(v.memoryMiB)}
                    {v.hasGuestAgent ? '' : ' · no guest agent'}
                    {auto ? ` · on ${on.join(', ')}` : ''}
                  </option>
                ))}
              </select>
            )
          }
        </Field>
      </div>
      {sources.error && (
        <ErrorBox error={sources.error} title={`Could not list the VMs on ${host?.name ?? 'the hosts'}`} />
      )}
      {vm?.running && (
        <Callout tone="info" title={`${vm.name} is running`}>
          Fluid copies a running VM with libvirt&apos;s backup API: it keeps running and is never written to,
          paused or snapshotted. If it is production, that is safe, and still worth knowing.
        </Callout>
      )}
      {sources.data?.errors.map((e) => (
        <ErrorBox key={e.hostId} error={{ code: 'UNAVAILABLE', message: e.message }} title={e.hostName} />
      ))}
      {vm && !vm.hasGuestAgent && (
        <Callout tone="warn" title="No guest agent">
          {vm.name} has no QEMU guest agent channel: Fluid needs it to give the clone its own identity.
        </Callout>
      )}

      <div className="form-cols">
        <Field label="Name" error={fieldErrors.name} help="Optional: lowercase letters, digits and “-”.">
          {(p) => (
            <input
              {...p}
              className="input mono"
              value={form.name}
              placeholder={source ? `${source.replace(/[^a-z0-9-]+/gi, '-').toLowerCase()}-xxxxxx` : ''}
              autoComplete="off"
              spellCheck={false}
              onChange={(e) => patchCreateForm({ name: e.target.value })}
            />
          )}
        </Field>
        <Field
          label="Time to live"
          error={fieldErrors.ttlMinutes}
          help="Destroyed automatically after this, unless extended."
        >
          {(p) => (
            <div className="input-unit">
              <input
                {...p}
                className="input input-num"
                inputMode="numeric"
                value={ttl}
                onChange={(e) => patchCreateForm({ ttlMinutes: e.target.value })}
              />
              <span className="unit">minutes</span>
            </div>
          )}
        </Field>
      </div>

      <div className="form-cols">
        <Field label="vCPUs" error={fieldErrors.vcpus} help={vm ? `The source has ${vm.vcpus}.` : undefined}>
          {(p) => (
            <input
              {...p}
              className="input input-num"
              inputMode="numeric"
              value={vcpus}
              onChange={(e) => patchCreateForm({ vcpus: e.target.value })}
            />
          )}
        </Field>
        <Field
          label="Memory"
          error={fieldErrors.memoryMiB}
          help={
            vm
              ? `The source has ${formatMiB(vm.memoryMiB)}. A different size cannot use the warm template.`
              : undefined
          }
        >
          {(p) => (
            <div className="input-unit">
              <input
                {...p}
                className="input input-num"
                inputMode="numeric"
                value={memory}
                onChange={(e) => patchCreateForm({ memoryMiB: e.target.value })}
              />
              <span className="unit">MiB</span>
            </div>
          )}
        </Field>
      </div>

      <Field
        label="Egress allowlist"
        error={fieldErrors.allow}
        help="The sandbox has no route out; these destinations are reachable through the egress proxy. One per line: host, host:port or *.domain (port 80/443 when omitted)."
      >
        {(p) => (
          <textarea
            {...p}
            className="input textarea mono"
            rows={2}
            value={form.allow}
            placeholder={'deb.debian.org\n*.pypi.org:443'}
            spellCheck={false}
            onChange={(e) => patchCreateForm({ allow: e.target.value })}
          />
        )}
      </Field>

      <fieldset className="field">
        <legend className="field-label">Start</legend>
        <div className="segmented" role="radiogroup" aria-label="Start">
          {START_MODES.map((m) => (
            <label key={m.value} className={form.start === m.value ? 'seg active' : 'seg'} title={m.help}>
              <input
                type="radio"
                name="start"
                value={m.value}
                checked={form.start === m.value}
                onChange={() => patchCreateForm({ start: m.value })}
              />
              {m.label}
            </label>
          ))}
        </div>
        <div className="field-help">{START_MODES.find((m) => m.value === form.start)?.help}</div>
      </fieldset>

      {error && <ErrorBox error={error} title="The sandbox was not created" />}
    </form>
  );
}

function CreateProgressView({ task }: { task: Task | null }) {
  const submitted = useCreateDialog((s) => s.submitted);
  const sandboxId = task?.target ?? null;
  const byId = useApprovals((s) => s.byId);
  const waiting = useMemo(
    () => pendingApprovals(byId).filter((a) => sandboxId && a.sandboxId === sandboxId),
    [byId, sandboxId],
  );

  // Its failure shows here, not as a toast as well.
  const shownId = task?.id ?? null;
  useEffect(() => (shownId ? showTaskInView(shownId) : undefined), [shownId]);

  // Done: open the sandbox.
  useEffect(() => {
    if (task?.status !== 'succeeded' || !task.target) return;
    const sb = task.result as { name?: string; startPath?: string } | null;
    toast({
      kind: 'success',
      title: 'Sandbox ready',
      message: `${sb?.name ?? 'The sandbox'} is running${sb?.startPath ? ` (${sb.startPath})` : ''}.`,
    });
    closeCreateDialog();
    navigate('sandboxes', task.target);
  }, [task?.status, task?.target, task?.result]);

  if (!task) return <Spinner label="Starting the creation" />;
  return (
    <div className="create-progress" data-status={task.status}>
      <p className="muted">
        {submitted?.source ? (
          <>
            Cloning <strong>{submitted.source}</strong>
            {submitted.name ? (
              <>
                {' '}
                into <strong className="mono">{submitted.name}</strong>
              </>
            ) : null}
            .
            {task.status === 'running' &&
              ' You can close this dialog: the creation goes on, and the task tray follows it.'}
          </>
        ) : (
          task.title
        )}
      </p>
      {waiting.length > 0 && (
        <Callout tone="warn" title="Waiting for an approval">
          <p>{waiting[0]!.detail}</p>
          <button
            type="button"
            className="btn btn-small"
            onClick={() => promptApprovals(waiting.map((a) => a.id))}
          >
            Review the request
          </button>
        </Callout>
      )}
      <TaskProgress task={task} label="Creation" log failedTitle="The sandbox was not created" />
      {task.status === 'cancelled' && (
        <Callout tone="info">The creation was cancelled; Fluid cleaned up what it had made.</Callout>
      )}
      {task.status === 'interrupted' && (
        <Callout tone="warn">
          The backend restarted during the creation; the sandbox was not finished.
        </Callout>
      )}
      {task.status === 'succeeded' && <Callout tone="ok">Created. Opening the sandbox…</Callout>}
    </div>
  );
}

export function CreateSandboxDialog() {
  const taskId = useCreateDialog((s) => s.taskId);
  const submitted = useCreateDialog((s) => s.submitted);
  const submitting = useCreateDialog((s) => s.submitting);
  const task = useWatchedTask(taskId);
  const [retrying, setRetrying] = useState(false);
  const [retryError, setRetryError] = useState<ErrorInfo | null>(null);
  const ended = task && task.status !== 'running';

  async function retry() {
    if (!submitted) return;
    setRetrying(true);
    setRetryError(null);
    try {
      const t = await rpc().call('sandboxes.create', submitted);
      upsertTask(t);
      followCreateTask(t.id, submitted);
    } catch (err) {
      setRetryError(toErrorInfo(err));
    } finally {
      setRetrying(false);
    }
  }

  const title = taskId
    ? task?.status === 'running' || !task
      ? 'Creating a sandbox'
      : `Sandbox creation ${task.status}`
    : 'New sandbox';
  return (
    <Modal
      title={title}
      wide
      onClose={closeCreateDialog}
      footer={
        taskId ? (
          <>
            {ended && task?.status !== 'succeeded' && (
              <>
                <button type="button" className="btn" onClick={backToCreateForm}>
                  <Icon name="edit" size={14} /> Edit
                </button>
                <button
                  type="button"
                  className="btn btn-primary"
                  disabled={retrying}
                  onClick={() => void retry()}
                >
                  <Icon name="refresh" size={14} /> {retrying ? 'Retrying…' : 'Retry'}
                </button>
              </>
            )}
            <button type="button" className="btn" onClick={closeCreateDialog}>
              {ended ? 'Close' : 'Close (keeps running)'}
            </button>
          </>
        ) : (
          <>
            <button type="button" className="btn" onClick={closeCreateDialog}>
              Cancel
            </button>
            <button
              type="submit"
              form="create-sandbox-form"
              className="btn btn-primary"
              disabled={submitting}
            >
              <Icon name="plus" size={14} /> {submitting ? 'Creating…' : 'Create sandbox'}
            </button>
          </>
        )
      }
    >
      {taskId ? <CreateProgressView task={task} /> : <CreateFormView />}
      {retryError && <ErrorBox error={retryError} title="Could not retry" />}
      {!taskId && <CreateHint />}
    </Modal>
  );
}

function CreateHint() {
  const count = useHosts((s) => s.order.length);
  if (count > 1) return null;
  return (
    <p className="muted small">
      Only {plural(count, 'host')} is registered. <a href="#/hosts/add">Add a KVM host</a> over SSH to clone
      its VMs.
    </p>
  );
}

/** Mounted once by the shell: New sandbox opens from any page (the overview, onboarding's last step). */
export function CreateSandboxHost() {
  const open = useCreateDialog((s) => s.open);
  return open ? <CreateSandboxDialog /> : null;
}
