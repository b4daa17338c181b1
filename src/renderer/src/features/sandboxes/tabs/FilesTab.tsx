/**
 * A sandbox's files as root: browse directories (names, sizes, modes, owners, times, link targets),
 * open a file in Monaco (syntax highlighting by type; Edit, then Save writes it atomically), preview
 * the head of a large file, download and upload. The place shown is in the address
 * (#/sandboxes/<id>/files/<path>): a reload or the back button comes back to it.
 */
import { useEffect, useMemo, useRef, useState, type FormEvent } from 'react';
import type { Contract } from '../../../../../shared/contract/index.ts';
import type { DirEntry, Sandbox } from '../../../../../shared/contract/sandboxes.ts';
import type { Out } from '../../../../../shared/rpc.ts';
import { Icon } from '../../../components/Icon.tsx';
import { Badge, ErrorBox, Modal, Spinner } from '../../../components/ui.tsx';
import { toErrorInfo, type ErrorInfo } from '../../../lib/errors.ts';
import { formatBytes, formatRelative, formatTime, plural } from '../../../lib/format.ts';
import { useNow } from '../../../lib/hooks.ts';
import { href, navigate } from '../../../lib/route.ts';
import { rpc } from '../../../stores/connection.ts';
import { toast } from '../../../stores/toasts.ts';
import { FileView } from './files/FileView.tsx';
import {
  TRANSFER_MAX_BYTES,
  crumbs,
  draftPaths,
  isDirLike,
  join,
  lastPath,
  normalizePath,
  parentOf,
  symbolicMode,
  toBase64,
} from './files/fileUtils.ts';

type Listing = Out<Contract, 'sandboxes.listDir'>;

/** Rows rendered at first in a large directory (the rest on request). */
const ROWS_SHOWN = 400;

function filesHref(sandboxId: string, path: string): string {
  return href('sandboxes', sandboxId, 'files', path);
}

function goTo(sandboxId: string, path: string): void {
  lastPath.set(sandboxId, path);
  navigate('sandboxes', sandboxId, 'files', path);
}

function EntryIcon({ e }: { e: DirEntry }) {
  if (isDirLike(e)) return <Icon name="folder" size={14} className="entry-icon dir" />;
  if (e.type === 'symlink') return <Icon name="link" size={14} className="entry-icon" />;
  return <Icon name="file" size={14} className="entry-icon" />;
}

function DirectoryTable({
  sandbox,
  listing,
  openPath,
  filter,
}: {
  sandbox: Sandbox;
  listing: Listing;
  openPath: string | null;
  filter: string;
}) {
  const now = useNow();
  const [showAll, setShowAll] = useState(false);
  const edited = draftPaths(sandbox.id);
  const shown = useMemo(() => {
    const f = filter.trim().toLowerCase();
    return f ? listing.entries.filter((e) => e.name.toLowerCase().includes(f)) : listing.entries;
  }, [listing, filter]);
  const rows = showAll ? shown : shown.slice(0, ROWS_SHOWN);
  const dir = normalizePath(listing.path);
  return (
    <div className="table-wrap files-table-wrap">
      <table className="table compact files-table" aria-label={`Contents of ${dir}`}>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col" className="num">
              Size
            </th>
            <th scope="col">Mode</th>
            <th scope="col">Owner</th>
            <th scope="col">Modified</th>
          </tr>
        </thead>
        <tbody>
          {dir !== '/' && (
            <tr className="entry-row" data-entry="..">
              <td colSpan={5}>
                <a className="entry-name" href={filesHref(sandbox.id, parentOf(dir))}>
                  <Icon name="arrowUp" size={14} className="entry-icon" /> ..
                </a>
              </td>
            </tr>
          )}
          {rows.map((e) => {
            const path = join(dir, e.name);
            const opened = openPath === path;
            return (
              <tr
                key={e.rawName ?? e.name}
                className={opened ? 'entry-row selected' : 'entry-row'}
                data-entry={e.name}
                data-type={e.type}
              >
                <td className="entry-cell">
                  {e.rawName ? (
                    <span
                      className="entry-name muted"
                      title="This name is not valid UTF-8: open it from the terminal"
                    >
                      <EntryIcon e={e} /> {e.name}
                    </span>
                  ) : (
                    <a
                      className="entry-name"
                      href={filesHref(sandbox.id, path)}
                      aria-current={opened ? 'true' : undefined}
                      onClick={() => lastPath.set(sandbox.id, path)}
                    >
                      <EntryIcon e={e} /> <span className="entry-text">{e.name}</span>
                      {isDirLike(e) && e.type === 'dir' ? '/' : ''}
                    </a>
                  )}
                  {e.type === 'symlink' && (
                    <span
                      className={
                        e.targetType === 'missing' || e.targetType === 'loop'
                          ? 'link-target fail-text'
                          : 'link-target muted'
                      }
                      title={e.targetType === 'missing' ? 'The target does not exist' : undefined}
                    >
                      {' '}
                      → <span className="mono">{e.target}</span>
                      {e.targetType === 'missing' ? ' (missing)' : e.targetType === 'loop' ? ' (loop)' : ''}
                    </span>
                  )}
                  {edited.has(path) && <Badge tone="info">unsaved</Badge>}
                </td>
                <td className="num nowrap">{isDirLike(e) ? '' : formatBytes(e.size)}</td>
                <td className="mono nowrap" title={`${e.mode} (${e.type})`}>
                  {symbolicMode(e.mode, e.type)}
                </td>
                <td className="mono nowrap">
                  {e.owner}:{e.group}
                </td>
                <td className="nowrap muted" title={formatTime(e.mtime)}>
                  {formatRelative(e.mtime, now)}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {!shown.length && (
        <p className="muted pad">
          {filter ? `Nothing here matches “${filter}”.` : 'This directory is empty.'}
        </p>
      )}
      {(shown.length > rows.length || listing.truncated) && (
        <div className="table-foot">
          <span className="muted">
            Showing {rows.length} of {listing.truncated ? listing.total : shown.length}
            {listing.truncated && ` (the listing stops at ${listing.entries.length})`}
          </span>
          {shown.length > rows.length && (
            <button type="button" className="btn btn-small" onClick={() => setShowAll(true)}>
              Show all {shown.length}
            </button>
          )}
        </div>
      )}
    </div>
  );
}

function UploadButton({
  sandbox,
  dir,
  names,
  onDone,
}: {
  sandbox: Sandbox;
  dir: string;
  names: Set<string>;
  onDone: () => void;
}) {
  const input = useRef<HTMLInputElement>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [confirm, setConfirm] = useState<File[] | null>(null);
  const [error, setError] = useState<ErrorInfo | null>(null);

  async function upload(files: File[]) {
    setConfirm(null);
    setError(null);
    for (const f of files) {
      if (f.size > TRANSFER_MAX_BYTES) {
        setError({
          code: 'VALIDATION',
          message: `${f.name} is ${formatBytes(f.size)}: uploads from the app carry at most ${formatBytes(TRANSFER_MAX_BYTES)}.`,
        });
        continue;
      }
      setBusy(f.name);
      try {
        const bytes = new Uint8Array(await f.arrayBuffer());
        const r = await rpc().call('sandboxes.writeFile', {
          sandbox: sandbox.id,
          path: join(dir, f.name),
          content: toBase64(bytes),
          encoding: 'base64',
        });
        toast({ kind: 'success', title: 'Uploaded', message: `${r.path} (${formatBytes(r.size)})` });
      } catch (err) {
        setError(toErrorInfo(err));
      } finally {
        setBusy(null);
      }
    }
    onDone();
  }

  return (
    <>
      <label className={busy ? 'btn btn-small disabled' : 'btn btn-small'}>
        <Icon name="upload" size={12} /> {busy ? `Uploading ${busy}…` : 'Upload'}
        <input
          ref={input}
          type="file"
          multiple
          className="visually-hidden-input"
          aria-label={`Upload files to ${dir}`}
          disabled={busy !== null}
          onChange={(e) => {
            const files = [...(e.target.files ?? [])];
            if (input.current) input.current.value = '';
            if (!files.length) return;
            if (files.some((f) => names.has(f.name))) setConfirm(files);
            else void upload(files);
          }}
        />
      </label>
      {error && (
        <div className="files-upload-error">
          <ErrorBox error={error} title="Not uploaded" />
        </div>
      )}
      {confirm && (
        <Modal
          title="Replace existing files?"
          onClose={() => setConfirm(null)}
          footer={
            <>
              <button type="button" className="btn" onClick={() => setConfirm(null)}>
                Cancel
              </button>
              <button type="button" className="btn btn-danger" onClick={() => void upload(confirm)}>
                Replace
              </button>
            </>
          }
        >
          <p>
            {confirm
              .filter((f) => names.has(f.name))
              .map((f) => f.name)
              .join(', ')}{' '}
            already {confirm.filter((f) => names.has(f.name)).length === 1 ? 'exists' : 'exist'} in{' '}
            <span className="mono">{dir}</span>. Uploading replaces the content (the owner and mode stay).
          </p>
        </Modal>
      )}
    </>
  );
}

export function FilesTab({ sandbox, path: routed }: { sandbox: Sandbox; path?: string }) {
  const target = normalizePath(routed ?? lastPath.get(sandbox.id) ?? '/');
  /** What the last listing found for an address: a directory, or a file and its directory. */
  const [res, setRes] = useState<{
    target: string;
    nonce: number;
    listing: Listing | null;
    file: string | null;
    error: ErrorInfo | null;
  } | null>(null);
  const [nonce, setNonce] = useState(0);
  /** A file the user is creating (not written until Save). */
  const [newFile, setNewFile] = useState<string | null>(null);
  const [pathError, setPathError] = useState<ErrorInfo | null>(null);
  const [goValue, setGoValue] = useState(target);
  const [seenTarget, setSeenTarget] = useState(target);
  const [filter, setFilter] = useState('');
  const [creating, setCreating] = useState<string | null>(null);
  const [createError, setCreateError] = useState<string | null>(null);

  // A new address: the path field follows it, and a new file elsewhere is dropped (the new file's
  // own address keeps it: its view stays on screen, with its "Saved" note, once it is written).
  if (seenTarget !== target) {
    setSeenTarget(target);
    setGoValue(target);
    setPathError(null);
    setNewFile((n) => (n && (parentOf(n) === target || n === target) ? n : null));
  }

  useEffect(() => void lastPath.set(sandbox.id, target), [sandbox.id, target]);

  // The directory on screen already answers for itself and for its files: no need to list again.
  const listing = res?.listing ?? null;
  const here = listing ? normalizePath(listing.path) : null;
  const known =
    here !== null && parentOf(target) === here
      ? listing!.entries.find((e) => !e.rawName && join(here, e.name) === target)
      : undefined;
  const fresh =
    !!res &&
    res.nonce === nonce &&
    (res.target === target || here === target || (known !== undefined && !isDirLike(known)));

  // Resolve the address: a directory is listed; a file opens, its directory listed beside it.
  useEffect(() => {
    if (fresh) return;
    const ac = new AbortController();
    const list = (dir: string) =>
      rpc().call('sandboxes.listDir', { sandbox: sandbox.id, path: dir }, { signal: ac.signal });
    const done = (r: { listing: Listing | null; file: string | null; error: ErrorInfo | null }) =>
      !ac.signal.aborted && setRes({ target, nonce, ...r });
    list(target).then(
      (l) => done({ listing: l, file: null, error: null }),
      (err: unknown) => {
        const info = toErrorInfo(err);
        const notDir = info.code === 'VALIDATION' && (info.data as { notDirectory?: boolean })?.notDirectory;
        if (!notDir) return done({ listing: null, file: null, error: info });
        list(parentOf(target)).then(
          (l) => done({ listing: l, file: target, error: null }),
          (e: unknown) => done({ listing: null, file: null, error: toErrorInfo(e) }),
        );
      },
    );
    return () => ac.abort();
  }, [sandbox.id, target, nonce, fresh]);

  const loading = !fresh;
  const dir = here ?? parentOf(target);
  const error = pathError ?? (res && res.target === target ? res.error : null);
  const openFile =
    newFile && parentOf(newFile) === dir
      ? newFile
      : res?.target === target
        ? res.file
        : known && !isDirLike(known)
          ? target
          : null;
  const isNew = openFile !== null && openFile === newFile;
  const names = useMemo(() => new Set((listing?.entries ?? []).map((e) => e.name)), [listing]);
  const entry =
    openFile && listing ? (listing.entries.find((e) => join(dir, e.name) === openFile) ?? null) : null;
  const place = { dir, file: openFile };

  function submitGo(e: FormEvent) {
    e.preventDefault();
    const p = goValue.trim();
    if (!p.startsWith('/')) {
      setPathError({ code: 'VALIDATION', message: 'An absolute path, starting with “/”.' });
      return;
    }
    goTo(sandbox.id, normalizePath(p));
  }

  function submitNew(e: FormEvent) {
    e.preventDefault();
    const name = (creating ?? '').trim();
    if (!name || name.includes('/') || name === '.' || name === '..') {
      setCreateError('A file name, without “/”.');
      return;
    }
    if (names.has(name)) {
      setCreateError(`${name} already exists here.`);
      return;
    }
    setCreating(null);
    setCreateError(null);
    setNewFile(join(dir, name));
  }

  const resolvedNote = listing && normalizePath(listing.resolved) !== dir ? listing.resolved : null;

  return (
    <div className="files-tab" data-loading={loading ? 'true' : 'false'} data-dir={dir}>
      <div className="files-bar">
        <nav className="crumbs-path" aria-label="Path">
          {crumbs(dir).map((c, i, all) => (
            <span key={c.path} className="crumb">
              {i === all.length - 1 && !place.file ? (
                <span className="mono" aria-current="location">
                  {c.name}
                </span>
              ) : (
                <a className="mono" href={filesHref(sandbox.id, c.path)}>
                  {c.name}
                </a>
              )}
              {i > 0 && i < all.length - 1 && <span className="crumb-sep">/</span>}
            </span>
          ))}
          {resolvedNote && (
            <span className="muted small" title="Symbolic links resolved">
              {' '}
              → <span className="mono">{resolvedNote}</span>
            </span>
          )}
        </nav>
        <form className="files-go" onSubmit={submitGo} noValidate>
          <label className="sr-only" htmlFor={`files-go-${sandbox.id}`}>
            Path
          </label>
          <input
            id={`files-go-${sandbox.id}`}
            className="input mono"
            value={goValue}
            spellCheck={false}
            autoComplete="off"
            placeholder="/etc"
            onChange={(e) => setGoValue(e.target.value)}
          />
          <button type="submit" className="btn btn-small">
            Go
          </button>
        </form>
      </div>
      <div className="files-actions">
        <label className="sr-only" htmlFor={`files-filter-${sandbox.id}`}>
          Filter
        </label>
        <input
          id={`files-filter-${sandbox.id}`}
          className="input input-filter"
          value={filter}
          placeholder="Filter names"
          onChange={(e) => setFilter(e.target.value)}
        />
        <span className="muted small">{listing ? plural(listing.total, 'entry', 'entries') : ''}</span>
        <span className="toolbar-spacer" />
        <button
          type="button"
          className="btn btn-small"
          onClick={() => setNonce((n) => n + 1)}
          disabled={loading}
          aria-label="Refresh the listing"
        >
          <Icon name="refresh" size={12} />
        </button>
        {creating === null ? (
          <button type="button" className="btn btn-small" onClick={() => setCreating('')} disabled={!listing}>
            <Icon name="plus" size={12} /> New file
          </button>
        ) : (
          <form className="files-new" onSubmit={submitNew} noValidate>
            <label className="sr-only" htmlFor={`files-new-${sandbox.id}`}>
              New file name
            </label>
            <input
              id={`files-new-${sandbox.id}`}
              className="input mono input-filter"
              value={creating}
              autoFocus
              placeholder="name"
              aria-invalid={createError ? true : undefined}
              onChange={(e) => {
                setCreating(e.target.value);
                setCreateError(null);
              }}
              onKeyDown={(e) => e.key === 'Escape' && setCreating(null)}
            />
            <button type="submit" className="btn btn-small btn-primary">
              Create
            </button>
          </form>
        )}
        {listing && (
          <UploadButton sandbox={sandbox} dir={dir} names={names} onDone={() => setNonce((n) => n + 1)} />
        )}
      </div>
      {createError && <div className="field-error">{createError}</div>}
      {error && (
        <ErrorBox
          error={error}
          title={error.code === 'NOT_FOUND' ? `Nothing at ${target}` : 'Could not list the directory'}
        >
          <div className="row-actions">
            <a className="btn btn-small" href={filesHref(sandbox.id, parentOf(target))}>
              <Icon name="arrowUp" size={12} /> Up to {parentOf(target)}
            </a>
            {error.code === 'NOT_FOUND' && (
              <button
                type="button"
                className="btn btn-small"
                onClick={() => {
                  setNewFile(target);
                  goTo(sandbox.id, parentOf(target));
                }}
              >
                Create {target}
              </button>
            )}
          </div>
        </ErrorBox>
      )}
      <div className={place.file ? 'files-split has-file' : 'files-split'}>
        <div className="files-list">
          {loading && !listing ? (
            <Spinner label="Listing the directory" />
          ) : (
            listing && (
              <DirectoryTable sandbox={sandbox} listing={listing} openPath={place.file} filter={filter} />
            )
          )}
        </div>
        {place.file && (
          <FileView
            key={place.file}
            sandbox={sandbox}
            path={place.file}
            entry={entry}
            isNew={isNew && !entry}
            onChanged={() => {
              const written = place.file!;
              setNonce((n) => n + 1);
              if (written !== target) goTo(sandbox.id, written);
            }}
            onClose={() => {
              setNewFile(null);
              goTo(sandbox.id, dir);
            }}
          />
        )}
      </div>
    </div>
  );
}
