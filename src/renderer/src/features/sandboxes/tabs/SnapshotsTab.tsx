/** A sandbox's snapshots: take one (with memory while it runs), roll back to one, delete one. */
import { useState, type FormEvent } from 'react';
import type { Sandbox, Snapshot } from '../../../../../shared/contract/sandboxes.ts';
import { Icon } from '../../../components/Icon.tsx';
import { Badge, ErrorBox, Field, Modal, Spinner } from '../../../components/ui.tsx';
import { toErrorInfo, type ErrorInfo } from '../../../lib/errors.ts';
import { formatRelative, formatTime } from '../../../lib/format.ts';
import { useBackendQuery, useNow } from '../../../lib/hooks.ts';
import { rpc } from '../../../stores/connection.ts';
import { upsertSandbox } from '../../../stores/sandboxes.ts';
import { toast } from '../../../stores/toasts.ts';

const NAME = /^[A-Za-z0-9._-]+$/;

function ConfirmSnapshot({
  sandbox,
  snapshot,
  action,
  onClose,
  onDone,
}: {
  sandbox: Sandbox;
  snapshot: Snapshot;
  action: 'restore' | 'delete';
  onClose: () => void;
  onDone: () => void;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);
  async function go() {
    setBusy(true);
    setError(null);
    try {
      if (action === 'restore') {
        upsertSandbox(await rpc().call('snapshots.restore', { sandbox: sandbox.id, snapshot: snapshot.id }));
        toast({
          kind: 'success',
          title: 'Snapshot restored',
          message: `${sandbox.name} is back at “${snapshot.name}”.`,
        });
      } else {
        await rpc().call('snapshots.delete', { sandbox: sandbox.id, snapshot: snapshot.id });
        toast({
          kind: 'success',
          title: 'Snapshot deleted',
          message: `“${snapshot.name}” of ${sandbox.name} is gone.`,
        });
      }
      onDone();
      onClose();
    } catch (err) {
      setError(toErrorInfo(err));
      setBusy(false);
    }
  }
  const restore = action === 'restore';
  return (
    <Modal
      title={restore ? `Restore “${snapshot.name}”?` : `Delete “${snapshot.name}”?`}
      onClose={onClose}
      footer={
        <>
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button
            type="button"
            className={restore ? 'btn btn-primary' : 'btn btn-danger'}
            disabled={busy}
            onClick={() => void go()}
          >
            {busy ? (restore ? 'Restoring…' : 'Deleting…') : restore ? 'Restore snapshot' : 'Delete snapshot'}
          </button>
        </>
      }
    >
      {restore ? (
        <p>
          <strong>{sandbox.name}</strong> goes back to how it was at {formatTime(snapshot.createdAt)}
          {snapshot.kind === 'disk+memory'
            ? ', running programs included'
            : ' (disk only: it boots from there)'}
          . Everything since is lost; open terminals end.
        </p>
      ) : (
        <p>
          The snapshot “{snapshot.name}” of <strong>{sandbox.name}</strong> is deleted. The sandbox itself
          does not change.
        </p>
      )}
      {error && <ErrorBox error={error} title={restore ? 'Not restored' : 'Not deleted'} />}
    </Modal>
  );
}

export function SnapshotsTab({ sandbox }: { sandbox: Sandbox }) {
  const list = useBackendQuery(
    (b, signal) => b.call('snapshots.list', { sandbox: sandbox.id }, { signal }),
    [sandbox.id],
    [sandbox.state],
  );
  const now = useNow();
  const [name, setName] = useState('');
  const [memory, setMemory] = useState(true);
  const [nameError, setNameError] = useState<string | null>(null);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [busy, setBusy] = useState(false);
  const [confirm, setConfirm] = useState<{ snapshot: Snapshot; action: 'restore' | 'delete' } | null>(null);
  const running = sandbox.state === 'running';

  async function create(e: FormEvent) {
    e.preventDefault();
    const n = name.trim();
    if (!n) return setNameError('Give the snapshot a name.');
    if (!NAME.test(n) || n.length > 64)
      return setNameError('Letters, digits, “.”, “_” and “-” (at most 64).');
    if (list.data?.some((s) => s.name === n)) return setNameError('A snapshot with this name exists.');
    setNameError(null);
    setError(null);
    setBusy(true);
    try {
      const snap = await rpc().call('snapshots.create', {
        sandbox: sandbox.id,
        name: n,
        memory: running && memory,
      });
      toast({
        kind: 'success',
        title: 'Snapshot taken',
        message: `“${snap.name}” (${snap.kind}) of ${sandbox.name}.`,
      });
      setName('');
      list.reload();
    } catch (err) {
      setError(toErrorInfo(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="snapshots-tab">
      <form className="snapshot-form" onSubmit={(e) => void create(e)} noValidate>
        <Field label="New snapshot" error={nameError}>
          {(p) => (
            <input
              {...p}
              className="input mono"
              value={name}
              placeholder="before-upgrade"
              autoComplete="off"
              spellCheck={false}
              onChange={(e) => {
                setName(e.target.value);
                setNameError(null);
              }}
            />
          )}
        </Field>
        <label
          className="check-label"
          title={running ? undefined : 'Only a running sandbox has memory to save'}
        >
          <input
            type="checkbox"
            checked={running && memory}
            disabled={!running}
            onChange={(e) => setMemory(e.target.checked)}
          />
          Include memory
        </label>
        <button type="submit" className="btn btn-primary" disabled={busy}>
          <Icon name="camera" size={12} /> {busy ? 'Taking…' : 'Take snapshot'}
        </button>
      </form>
      {error && <ErrorBox error={error} title="No snapshot was taken" />}

      {list.error ? (
        <ErrorBox error={list.error} title="Could not list the snapshots" />
      ) : !list.data ? (
        <Spinner label="Loading snapshots" />
      ) : list.data.length === 0 ? (
        <p className="muted">
          No snapshots yet. A snapshot is a point to come back to: take one before a risky change.
        </p>
      ) : (
        <table className="table" aria-label="Snapshots">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Kind</th>
              <th scope="col">Taken</th>
              <th scope="col">By</th>
              <th scope="col" className="num">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.data.map((s) => (
              <tr key={s.id} data-snapshot={s.name}>
                <th scope="row" className="mono">
                  {s.name}
                </th>
                <td>
                  <Badge tone={s.kind === 'disk+memory' ? 'info' : 'neutral'}>{s.kind}</Badge>
                </td>
                <td title={formatTime(s.createdAt)}>{formatRelative(s.createdAt, now)}</td>
                <td className="mono small">
                  {s.createdBy.door}:{s.createdBy.id}
                </td>
                <td className="num nowrap">
                  <button
                    type="button"
                    className="btn btn-small"
                    onClick={() => setConfirm({ snapshot: s, action: 'restore' })}
                  >
                    Restore
                  </button>{' '}
                  <button
                    type="button"
                    className="btn btn-small btn-danger-ghost"
                    aria-label={`Delete ${s.name}`}
                    onClick={() => setConfirm({ snapshot: s, action: 'delete' })}
                  >
                    <Icon name="trash" size={12} />
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {confirm && (
        <ConfirmSnapshot
          sandbox={sandbox}
          snapshot={confirm.snapshot}
          action={confirm.action}
          onClose={() => setConfirm(null)}
          onDone={list.reload}
        />
      )}
    </div>
  );
}
