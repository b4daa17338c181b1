/**
 * One file of a sandbox: text in Monaco (read-only until Edit; Save writes it atomically as root after
 * checking nobody changed it meanwhile), a large file as a read-only preview of its head, a binary
 * file as a hex preview; Download for any of them up to the backend's limit.
 */
import { useEffect, useState } from 'react';
import type { Contract } from '../../../../../../shared/contract/index.ts';
import type { DirEntry, Sandbox } from '../../../../../../shared/contract/sandboxes.ts';
import type { Out } from '../../../../../../shared/rpc.ts';
import { Icon } from '../../../../components/Icon.tsx';
import { CodeEditor } from '../../../../components/monaco/CodeEditor.tsx';
import { LANGUAGE_LABEL } from '../../../../components/monaco/languageFor.ts';
import { Badge, Callout, ErrorBox, Spinner } from '../../../../components/ui.tsx';
import { toErrorInfo, type ErrorInfo } from '../../../../lib/errors.ts';
import { formatBytes } from '../../../../lib/format.ts';
import { rpc } from '../../../../stores/connection.ts';
import { toast } from '../../../../stores/toasts.ts';
import {
  EDIT_MAX_BYTES,
  PREVIEW_BYTES,
  TRANSFER_MAX_BYTES,
  baseName,
  fromBase64,
  getDraft,
  hexDump,
  saveAs,
  setDraft,
  symbolicMode,
} from './fileUtils.ts';

type FileContent = Out<Contract, 'sandboxes.readFile'>;

const HEX_BYTES = 512;

export async function downloadFile(sandboxId: string, path: string, size: number | null): Promise<void> {
  if (size !== null && size > TRANSFER_MAX_BYTES)
    throw new Error(
      `${path} is ${formatBytes(size)}, more than the ${formatBytes(TRANSFER_MAX_BYTES)} a download from the app can carry. Copy it with the terminal instead.`,
    );
  const f = await rpc().call('sandboxes.readFile', {
    sandbox: sandboxId,
    path,
    maxBytes: TRANSFER_MAX_BYTES,
  });
  saveAs(baseName(path), f.encoding === 'utf8' ? f.content : fromBase64(f.content));
}

export function FileView({
  sandbox,
  path,
  entry,
  isNew,
  onChanged,
  onClose,
}: {
  sandbox: Sandbox;
  path: string;
  /** What the listing says about it (size, mode, owner), when it came from one. */
  entry: DirEntry | null;
  /** A file that does not exist yet: start with an empty draft. */
  isNew?: boolean;
  /** Something was written (the listing shows new sizes). */
  onChanged: () => void;
  onClose: () => void;
}) {
  const [file, setFile] = useState<FileContent | null>(null);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [nonce, setNonce] = useState(0);
  /** Which read the file on screen came from (size and time from the listing, Reload). */
  const readKey = `${entry?.size ?? ''}:${entry?.mtime ?? ''}:${nonce}`;
  const [readDone, setReadDone] = useState<string | null>(null);
  const loading = !(isNew && nonce === 0) && readDone !== readKey;
  const kept = getDraft(sandbox.id, path);
  const [editing, setEditing] = useState(!!kept || !!isNew);
  const [draft, setDraftText] = useState<string | null>(kept?.text ?? (isNew ? '' : null));
  const [original, setOriginal] = useState<string | null>(kept?.original ?? (isNew ? '' : null));
  const [saving, setSaving] = useState(false);
  const [saveError, setSaveError] = useState<ErrorInfo | null>(null);
  const [conflict, setConflict] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [language, setLanguage] = useState('plaintext');
  const [downloading, setDownloading] = useState(false);
  const [exists, setExists] = useState(!isNew);

  useEffect(() => {
    if (isNew && nonce === 0) return;
    const ac = new AbortController();
    const big = entry !== null && entry.size > EDIT_MAX_BYTES;
    rpc()
      .call(
        'sandboxes.readFile',
        { sandbox: sandbox.id, path, maxBytes: big ? PREVIEW_BYTES : EDIT_MAX_BYTES, head: true },
        { signal: ac.signal },
      )
      .then(
        (f) => {
          if (ac.signal.aborted) return;
          setFile(f);
          setError(null);
          setExists(true);
          // An edit kept from before stays; otherwise what was read is the starting point.
          if (!getDraft(sandbox.id, path))
            setOriginal(f.encoding === 'utf8' && !f.truncated ? f.content : null);
        },
        (err: unknown) => !ac.signal.aborted && setError(toErrorInfo(err)),
      )
      .finally(() => !ac.signal.aborted && setReadDone(readKey));
    return () => ac.abort();
    // The listing's size and time (readKey) say when to read again; a new listing object does not.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [sandbox.id, path, readKey, isNew]);

  const text = file?.encoding === 'utf8' ? file.content : null;
  const truncated = !!file?.truncated;
  const editable = (text !== null && !truncated) || !exists;
  const dirty = draft !== null && draft !== original;

  function edit(next: string) {
    setDraftText(next);
    setSaved(null);
    setDraft(sandbox.id, path, original !== null ? { original, text: next } : null);
  }

  function stopEditing() {
    setEditing(false);
    setDraftText(null);
    setConflict(null);
    setSaveError(null);
    setDraft(sandbox.id, path, null);
  }

  async function save(force = false) {
    if (draft === null || saving) return;
    setSaving(true);
    setSaveError(null);
    try {
      if (exists && !force) {
        // Someone (an agent, a command) may have written it since it was read: do not overwrite blindly.
        const now = await rpc().call('sandboxes.readFile', {
          sandbox: sandbox.id,
          path,
          maxBytes: EDIT_MAX_BYTES,
          head: true,
        });
        if (now.encoding !== 'utf8' || now.truncated || now.content !== original) {
          setConflict(now.encoding === 'utf8' && !now.truncated ? now.content : '');
          return;
        }
      }
      const r = await rpc().call('sandboxes.writeFile', { sandbox: sandbox.id, path, content: draft });
      setDraft(sandbox.id, path, null);
      setOriginal(draft);
      setFile({ path, size: r.size, encoding: 'utf8', content: draft, truncated: false });
      setExists(true);
      setConflict(null);
      setEditing(false);
      setDraftText(null);
      setSaved(`Saved ${formatBytes(r.size)} to ${r.path}.`);
      onChanged();
    } catch (err) {
      setSaveError(toErrorInfo(err));
    } finally {
      setSaving(false);
    }
  }

  async function download() {
    setDownloading(true);
    try {
      await downloadFile(sandbox.id, path, file?.size ?? entry?.size ?? null);
    } catch (err) {
      toast({ kind: 'error', title: `Downloading ${baseName(path)}`, message: toErrorInfo(err).message });
    } finally {
      setDownloading(false);
    }
  }

  const size = file?.size ?? entry?.size ?? null;
  const tooBigToDownload = size !== null && size > TRANSFER_MAX_BYTES;
  const bytes = file?.encoding === 'base64' ? fromBase64(file.content, HEX_BYTES) : null;
  const shown = editing && draft !== null ? draft : (text ?? '');

  return (
    <section
      className="file-view"
      aria-label={`File ${path}`}
      data-path={path}
      data-encoding={file?.encoding ?? (isNew ? 'utf8' : '')}
      data-loading={loading ? 'true' : 'false'}
      data-truncated={truncated ? 'true' : 'false'}
      data-dirty={dirty ? 'true' : 'false'}
    >
      <div className="file-head">
        <span className="mono file-path" title={path}>
          {path}
        </span>
        {!exists ? (
          <Badge tone="info">new file</Badge>
        ) : file ? (
          <Badge tone={file.encoding === 'utf8' ? 'neutral' : 'warn'}>
            {file.encoding === 'utf8' ? (LANGUAGE_LABEL[language] ?? 'text') : 'binary'}
          </Badge>
        ) : null}
        {editing && <Badge tone="info">{dirty ? 'edited' : 'editing'}</Badge>}
        <span className="muted small" data-testid="file-size">
          {size !== null ? formatBytes(size) : ''}
          {size !== null && size >= 1024 ? ` (${size.toLocaleString()} bytes)` : ''}
        </span>
        {entry && (
          <span className="muted small mono" title={`mode ${entry.mode}`}>
            {symbolicMode(entry.mode, entry.type)} {entry.owner}:{entry.group}
          </span>
        )}
        <span className="toolbar-spacer" />
        {exists && (
          <>
            <button
              type="button"
              className="btn btn-small"
              onClick={() => setNonce((n) => n + 1)}
              aria-label="Reload the file"
              title="Read it again from the sandbox"
              disabled={loading || dirty}
            >
              <Icon name="refresh" size={12} />
            </button>
            <button
              type="button"
              className="btn btn-small"
              onClick={() => void download()}
              disabled={downloading || tooBigToDownload}
              title={
                tooBigToDownload
                  ? `Over ${formatBytes(TRANSFER_MAX_BYTES)}: copy it with the terminal`
                  : undefined
              }
            >
              <Icon name="download" size={12} /> {downloading ? 'Downloading…' : 'Download'}
            </button>
          </>
        )}
        {!editing ? (
          <button
            type="button"
            className="btn btn-small"
            disabled={!editable || loading}
            title={
              !editable
                ? truncated
                  ? 'Too large to edit here'
                  : 'Binary files cannot be edited here'
                : 'Edit the file (saved atomically as root)'
            }
            onClick={() => {
              setSaved(null);
              setEditing(true);
              setDraftText(text ?? '');
            }}
          >
            <Icon name="edit" size={12} /> Edit
          </button>
        ) : null}
        <button
          type="button"
          className="btn btn-small btn-ghost"
          aria-label="Close the file"
          onClick={onClose}
        >
          <Icon name="x" size={12} />
        </button>
      </div>

      {loading && !file && <Spinner label="Reading the file" />}
      {error && (
        <ErrorBox
          error={error}
          title={error.code === 'NOT_FOUND' ? 'No such file' : 'Could not read the file'}
        />
      )}
      {saved && (
        <p className="saved-note" role="status">
          <Icon name="check" size={12} /> {saved}
        </p>
      )}
      {truncated && file && (
        <Callout tone="info" title="Large file: a read-only preview">
          Showing the first{' '}
          {formatBytes(PREVIEW_BYTES > file.content.length ? file.content.length : PREVIEW_BYTES)} of{' '}
          {formatBytes(file.size)}. Files over {formatBytes(EDIT_MAX_BYTES)} are not edited here:{' '}
          {tooBigToDownload
            ? 'read the rest with the terminal (less, tail, grep).'
            : 'download it, or read the rest with the terminal (less, tail, grep).'}
        </Callout>
      )}

      {(text !== null || (editing && draft !== null)) && (
        <CodeEditor
          key={`${path}:${nonce}`}
          path={path}
          value={shown}
          readOnly={!editing}
          onChange={editing ? edit : undefined}
          onSave={() => void save()}
          ariaLabel={editing ? `Editing ${path}` : `Content of ${path}`}
          onLanguage={setLanguage}
        />
      )}
      {text === '' && !editing && <p className="muted small">(empty file)</p>}
      {bytes && file && (
        <>
          <p className="muted small file-binary-note">
            Binary: {formatBytes(file.size)}. The first {Math.min(HEX_BYTES, file.size)} bytes:
          </p>
          <pre className="file-text hex" aria-label="Hex preview">
            {hexDump(bytes)}
          </pre>
        </>
      )}

      {conflict !== null && (
        <Callout tone="warn" title={`${baseName(path)} changed in the sandbox since you opened it`}>
          <p>
            Saving now would overwrite that change. Reload it to see the new content (your edit is lost), or
            overwrite it.
          </p>
          <div className="row-actions">
            <button
              type="button"
              className="btn btn-small"
              onClick={() => {
                stopEditing();
                setNonce((n) => n + 1);
              }}
            >
              Reload, drop my edit
            </button>
            <button type="button" className="btn btn-small btn-danger" onClick={() => void save(true)}>
              Overwrite
            </button>
          </div>
        </Callout>
      )}
      {saveError && <ErrorBox error={saveError} title="Not saved" />}
      {editing && (
        <div className="form-actions">
          <span className="muted small">
            Written atomically as root, keeping the file&apos;s owner and mode (Ctrl+S saves).
          </span>
          <button type="button" className="btn" onClick={stopEditing} disabled={saving}>
            {dirty ? 'Discard' : 'Cancel'}
          </button>
          <button
            type="button"
            className="btn btn-primary"
            onClick={() => void save()}
            disabled={saving || (!dirty && exists)}
          >
            {saving ? 'Saving…' : 'Save'}
          </button>
        </div>
      )}
    </section>
  );
}
