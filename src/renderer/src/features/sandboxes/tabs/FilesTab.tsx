/**
 * Read a file as root (text shown as is, binary as its size and a hex preview), edit text in place and
 * save it back atomically; create a file that does not exist yet.
 */
import { useState, type FormEvent } from 'react';
import type { Contract } from '../../../../../shared/contract/index.ts';
import type { Sandbox } from '../../../../../shared/contract/sandboxes.ts';
import type { Out } from '../../../../../shared/rpc.ts';
import { Icon } from '../../../components/Icon.tsx';
import { Badge, ErrorBox, Spinner } from '../../../components/ui.tsx';
import { toErrorInfo, type ErrorInfo } from '../../../lib/errors.ts';
import { formatBytes } from '../../../lib/format.ts';
import { rpc } from '../../../stores/connection.ts';

type FileContent = Out<Contract, 'sandboxes.readFile'>;

const DEFAULT_MAX = 1024 * 1024;
const HARD_MAX = 64 * 1024 * 1024;
const HEX_BYTES = 512;

function bytesOf(base64: string, limit: number): Uint8Array {
  // Whole 4-character groups decode on their own: only decode what the preview shows.
  const bin = atob(base64.slice(0, Math.ceil(limit / 3) * 4));
  const out = new Uint8Array(Math.min(bin.length, limit));
  for (let i = 0; i < out.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function hexDump(bytes: Uint8Array): string {
  const lines: string[] = [];
  for (let off = 0; off < bytes.length; off += 16) {
    const row = bytes.subarray(off, off + 16);
    const hex = [...row].map((b) => b.toString(16).padStart(2, '0'));
    const left = hex.slice(0, 8).join(' ');
    const right = hex.slice(8).join(' ');
    const ascii = [...row].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${off.toString(16).padStart(8, '0')}  ${left.padEnd(23)}  ${right.padEnd(23)}  |${ascii}|`);
  }
  return lines.join('\n');
}

function tooLargeSize(e: ErrorInfo | null): number | null {
  if (!e || e.code !== 'VALIDATION') return null;
  const d = e.data as { size?: unknown; maxBytes?: unknown } | undefined;
  return d && typeof d.maxBytes === 'number' ? (typeof d.size === 'number' ? d.size : -1) : null;
}

export function FilesTab({ sandbox }: { sandbox: Sandbox }) {
  const [path, setPath] = useState('');
  const [file, setFile] = useState<FileContent | null>(null);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [loading, setLoading] = useState(false);
  /** The text being edited; null when not editing. */
  const [draft, setDraft] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const [saveError, setSaveError] = useState<ErrorInfo | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [pathError, setPathError] = useState<string | null>(null);

  async function open(target = path, maxBytes = DEFAULT_MAX) {
    const p = target.trim();
    if (!p.startsWith('/')) {
      setPathError('An absolute path, starting with “/”.');
      return;
    }
    setPathError(null);
    setLoading(true);
    setError(null);
    setSaved(null);
    setDraft(null);
    setSaveError(null);
    try {
      setFile(await rpc().call('sandboxes.readFile', { sandbox: sandbox.id, path: p, maxBytes }));
    } catch (err) {
      setFile(null);
      setError(toErrorInfo(err));
    } finally {
      setLoading(false);
    }
  }

  async function save() {
    if (draft === null) return;
    const target = file?.path ?? path.trim();
    setSaving(true);
    setSaveError(null);
    try {
      const r = await rpc().call('sandboxes.writeFile', {
        sandbox: sandbox.id,
        path: target,
        content: draft,
      });
      const back = await rpc().call('sandboxes.readFile', {
        sandbox: sandbox.id,
        path: target,
        maxBytes: HARD_MAX,
      });
      setFile(back);
      setError(null);
      setDraft(null);
      setSaved(`Saved ${formatBytes(r.size)} to ${r.path}.`);
    } catch (err) {
      setSaveError(toErrorInfo(err));
    } finally {
      setSaving(false);
    }
  }

  function submit(e: FormEvent) {
    e.preventDefault();
    void open();
  }

  const big = tooLargeSize(error);
  const notFound = error?.code === 'NOT_FOUND';
  const bytes = file?.encoding === 'base64' ? bytesOf(file.content, HEX_BYTES) : null;
  return (
    <div className="files-tab" data-loading={loading ? 'true' : 'false'}>
      <form className="files-bar" onSubmit={submit} noValidate>
        <label className="toolbar-label" htmlFor={`file-path-${sandbox.id}`}>
          Path
        </label>
        <input
          id={`file-path-${sandbox.id}`}
          className="input mono"
          value={path}
          placeholder="/etc/hostname"
          spellCheck={false}
          autoComplete="off"
          aria-invalid={pathError ? true : undefined}
          aria-describedby={pathError ? `file-path-err-${sandbox.id}` : undefined}
          onChange={(e) => setPath(e.target.value)}
        />
        <button type="submit" className="btn btn-primary" disabled={loading || !path.trim()}>
          <Icon name="file" size={12} /> {loading ? 'Opening…' : 'Open'}
        </button>
        <button
          type="button"
          className="btn"
          disabled={!path.trim().startsWith('/')}
          title="Write a new file at this path"
          onClick={() => {
            setFile(null);
            setError(null);
            setSaved(null);
            setDraft('');
          }}
        >
          <Icon name="plus" size={12} /> New file
        </button>
      </form>
      {pathError && (
        <div className="field-error" id={`file-path-err-${sandbox.id}`}>
          {pathError}
        </div>
      )}
      {loading && <Spinner label="Reading the file" />}

      {error && (
        <ErrorBox
          error={error}
          title={
            notFound ? 'No such file' : big !== null ? 'Too large to show here' : 'Could not read the file'
          }
        >
          <div className="row-actions">
            {notFound && (
              <button type="button" className="btn btn-small" onClick={() => setDraft('')}>
                Create this file
              </button>
            )}
            {big !== null && big <= HARD_MAX && (
              <button type="button" className="btn btn-small" onClick={() => void open(path, HARD_MAX)}>
                Load it anyway{big > 0 ? ` (${formatBytes(big)})` : ''}
              </button>
            )}
          </div>
        </ErrorBox>
      )}
      {saved && (
        <p className="saved-note" role="status">
          <Icon name="check" size={12} /> {saved}
        </p>
      )}

      {draft !== null ? (
        <div className="file-view">
          <div className="file-head">
            <span className="mono file-path">{file?.path ?? path.trim()}</span>
            <Badge tone="info">{file ? 'editing' : 'new file'}</Badge>
            <span className="toolbar-spacer" />
            <span className="muted small">{formatBytes(new TextEncoder().encode(draft).length)}</span>
          </div>
          <textarea
            className="input textarea mono file-editor"
            aria-label="File content"
            value={draft}
            rows={16}
            spellCheck={false}
            onChange={(e) => setDraft(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === 's' && (e.ctrlKey || e.metaKey)) {
                e.preventDefault();
                void save();
              }
            }}
          />
          {saveError && <ErrorBox error={saveError} title="Not saved" />}
          <div className="form-actions">
            <span className="muted small">Written atomically as root (Ctrl+S saves).</span>
            <button type="button" className="btn" onClick={() => setDraft(null)} disabled={saving}>
              Cancel
            </button>
            <button type="button" className="btn btn-primary" onClick={() => void save()} disabled={saving}>
              {saving ? 'Saving…' : 'Save'}
            </button>
          </div>
        </div>
      ) : (
        file && (
          <div className="file-view" data-encoding={file.encoding} data-path={file.path}>
            <div className="file-head">
              <span className="mono file-path">{file.path}</span>
              <Badge tone={file.encoding === 'utf8' ? 'neutral' : 'warn'}>
                {file.encoding === 'utf8' ? 'text' : 'binary'}
              </Badge>
              <span className="muted small" data-testid="file-size">
                {formatBytes(file.size)}
                {file.size >= 1024 ? ` (${file.size.toLocaleString()} bytes)` : ''}
              </span>
              <span className="toolbar-spacer" />
              <button
                type="button"
                className="btn btn-small"
                onClick={() => void open(file.path)}
                aria-label="Reload the file"
              >
                <Icon name="refresh" size={12} />
              </button>
              <button
                type="button"
                className="btn btn-small"
                disabled={file.encoding !== 'utf8'}
                title={file.encoding !== 'utf8' ? 'Binary files cannot be edited here' : undefined}
                onClick={() => {
                  setSaved(null);
                  setDraft(file.content);
                }}
              >
                <Icon name="edit" size={12} /> Edit
              </button>
            </div>
            {file.encoding === 'utf8' ? (
              <pre className="file-text" aria-label="File content">
                {file.content || <span className="muted">(empty file)</span>}
              </pre>
            ) : (
              <>
                <p className="muted small file-binary-note">
                  Binary: {formatBytes(file.size)}. The first {Math.min(HEX_BYTES, file.size)} bytes:
                </p>
                <pre className="file-text hex" aria-label="Hex preview">
                  {bytes ? hexDump(bytes) : ''}
                </pre>
              </>
            )}
          </div>
        )
      )}
    </div>
  );
}
