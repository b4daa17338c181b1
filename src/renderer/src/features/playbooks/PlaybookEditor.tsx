/**
 * The playbook editor: Monaco with monaco-yaml (loaded on first use), the Ansible playbook schema
 * and Fluid's own diagnostics (YAML 1.1 readings, structure, what Fluid refuses to run) as inline
 * markers, a list of every problem under it, and Save, which makes a new revision.
 */
import { useEffect, useEffectEvent, useId, useRef, useState } from 'react';
import type { Diagnostic } from '../../../../shared/contract/playbooks.ts';
import { Spinner } from '../../components/ui.tsx';
import { rpc } from '../../stores/connection.ts';
import type * as MonacoModule from './monaco.ts';
import type { MonacoNamespace } from './monaco.ts';
import type * as Monaco from 'monaco-editor';

export interface Problem {
  severity: 'error' | 'warning' | 'info';
  message: string;
  line: number;
  column: number;
  source: string;
}

let loading: Promise<typeof MonacoModule> | null = null;
const loadMonaco = () => (loading ??= import('./monaco.ts'));

const SEVERITY: Record<Diagnostic['severity'], 'Error' | 'Warning' | 'Info'> = {
  error: 'Error',
  warning: 'Warning',
  info: 'Info',
};

function themeName(): string {
  return document.documentElement.dataset.theme === 'dark' ? 'vs-dark' : 'vs';
}

export function PlaybookEditor({
  modelKey,
  value,
  onChange,
  onProblems,
  readOnly,
}: {
  /** A new key starts a new model (another playbook or revision). */
  modelKey: string;
  value: string;
  onChange: (text: string) => void;
  onProblems: (problems: Problem[]) => void;
  readOnly?: boolean;
}) {
  const host = useRef<HTMLDivElement>(null);
  const editorRef = useRef<Monaco.editor.IStandaloneCodeEditor | null>(null);
  const monacoRef = useRef<MonacoNamespace | null>(null);
  const [ready, setReady] = useState(false);
  const [failed, setFailed] = useState<string | null>(null);
  const changed = useEffectEvent((text: string) => onChange(text));
  const reportProblems = useEffectEvent((problems: Problem[]) => onProblems(problems));

  // Create the editor once.
  useEffect(() => {
    let disposed = false;
    const disposables: Monaco.IDisposable[] = [];
    loadMonaco().then(
      ({ monaco }) => {
        if (disposed || !host.current) return;
        monacoRef.current = monaco;
        const editor = monaco.editor.create(host.current, {
          automaticLayout: true,
          minimap: { enabled: false },
          fontSize: 13,
          tabSize: 2,
          insertSpaces: true,
          renderWhitespace: 'boundary',
          scrollBeyondLastLine: false,
          theme: themeName(),
          ariaLabel: 'Playbook YAML',
          readOnly: !!readOnly,
        });
        editorRef.current = editor;
        disposables.push(
          monaco.editor.onDidChangeMarkers((uris) => {
            const model = editor.getModel();
            if (!model || !uris.some((u) => u.toString() === model.uri.toString())) return;
            reportProblems(
              monaco.editor
                .getModelMarkers({ resource: model.uri })
                .map((m): Problem => ({
                  severity:
                    m.severity === monaco.MarkerSeverity.Error
                      ? 'error'
                      : m.severity === monaco.MarkerSeverity.Warning
                        ? 'warning'
                        : 'info',
                  message: m.message,
                  line: m.startLineNumber,
                  column: m.startColumn,
                  source: m.owner === 'fluid' ? 'Fluid' : 'schema',
                }))
                .sort((a, b) => a.line - b.line || a.column - b.column),
            );
          }),
        );
        const observer = new MutationObserver(() => monaco.editor.setTheme(themeName()));
        observer.observe(document.documentElement, { attributes: true, attributeFilter: ['data-theme'] });
        disposables.push({ dispose: () => observer.disconnect() });
        setReady(true);
      },
      (err: unknown) => !disposed && setFailed(err instanceof Error ? err.message : String(err)),
    );
    return () => {
      disposed = true;
      for (const d of disposables) d.dispose();
      editorRef.current?.getModel()?.dispose();
      editorRef.current?.dispose();
      editorRef.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  // One model per playbook revision being edited, at a path the schema applies to.
  useEffect(() => {
    const monaco = monacoRef.current;
    const editor = editorRef.current;
    if (!ready || !monaco || !editor) return;
    const uri = monaco.Uri.parse(`file:///playbooks/${encodeURIComponent(modelKey)}/playbook.yml`);
    const old = editor.getModel();
    const model = monaco.editor.getModel(uri) ?? monaco.editor.createModel(value, 'yaml', uri);
    if (model.getValue() !== value) model.setValue(value);
    editor.setModel(model);
    if (old && old !== model) old.dispose();
    let timer: ReturnType<typeof setTimeout> | null = null;
    let seq = 0;
    const validate = () => {
      const mine = ++seq;
      const text = model.getValue();
      rpc()
        .call('playbooks.validate', { yaml: text })
        .then(
          (r) => {
            if (mine !== seq || model.isDisposed()) return;
            monaco.editor.setModelMarkers(
              model,
              'fluid',
              r.diagnostics.map((d) => ({
                severity: monaco.MarkerSeverity[SEVERITY[d.severity]],
                message: d.message,
                startLineNumber: d.line,
                startColumn: d.column,
                endLineNumber: d.endLine,
                endColumn: d.endColumn,
                source: `Fluid (${d.source})`,
              })),
            );
          },
          () => {
            /* not connected: the schema markers still show */
          },
        );
    };
    validate();
    const sub = model.onDidChangeContent(() => {
      changed(model.getValue());
      if (timer) clearTimeout(timer);
      timer = setTimeout(validate, 300);
    });
    return () => {
      sub.dispose();
      if (timer) clearTimeout(timer);
    };
    // The model is keyed by modelKey; `value` only seeds it.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [ready, modelKey]);

  useEffect(() => {
    editorRef.current?.updateOptions({ readOnly: !!readOnly });
  }, [readOnly]);

  return (
    <div className="pb-editor-wrap">
      {!ready && !failed && (
        <div className="pb-editor-loading">
          <Spinner label="Loading the editor" /> Loading the editor…
        </div>
      )}
      {failed && <p className="error">The editor could not load: {failed}</p>}
      <div className="pb-editor" ref={host} data-testid="playbook-editor" />
    </div>
  );
}

export function ProblemList({ problems }: { problems: Problem[] }) {
  const id = useId();
  return (
    <section className="pb-problems" aria-labelledby={id} data-testid="playbook-problems">
      <h3 id={id} className="pb-problems-title">
        Problems{' '}
        <span className="muted">
          {problems.length
            ? `${problems.filter((p) => p.severity === 'error').length} errors, ${problems.filter((p) => p.severity !== 'error').length} warnings`
            : 'none'}
        </span>
      </h3>
      {problems.length > 0 && (
        <ul>
          {problems.map((p, i) => (
            <li key={i} className={`pb-problem pb-problem-${p.severity}`} data-severity={p.severity}>
              <span className="mono">
                {p.line}:{p.column}
              </span>{' '}
              <span className="pb-problem-source">{p.source}</span> {p.message}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
