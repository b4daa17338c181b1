/**
 * A Monaco editor for a file: syntax highlighting by file type, read-only or editable, Ctrl/Cmd+S to
 * save. Monaco and the grammars load on first use (load.ts); until then a plain preview shows the text.
 */
import { useEffect, useEffectEvent, useRef, useState } from 'react';
import type * as Monaco from 'monaco-editor';
import { loadFileLanguages } from './load.ts';
import { languageFor } from './languageFor.ts';

let modelSeq = 0;

export function CodeEditor({
  path,
  value,
  readOnly,
  onChange,
  onSave,
  ariaLabel,
  onLanguage,
}: {
  /** The file's path (picks the language; a new path is a new model). */
  path: string;
  /** The text to start from; later changes of the prop replace the content (a reload). */
  value: string;
  readOnly: boolean;
  onChange?: (text: string) => void;
  onSave?: () => void;
  ariaLabel: string;
  /** Told which language was chosen. */
  onLanguage?: (id: string) => void;
}) {
  const host = useRef<HTMLDivElement>(null);
  const editorRef = useRef<Monaco.editor.IStandaloneCodeEditor | null>(null);
  const [ready, setReady] = useState(false);
  const [failed, setFailed] = useState<string | null>(null);
  const changed = useEffectEvent((text: string) => onChange?.(text));
  const save = useEffectEvent(() => onSave?.());
  const nl = value.indexOf('\n');
  const language = languageFor(path, value.slice(0, nl === -1 ? 200 : Math.min(nl, 200)));
  const reportLanguage = useEffectEvent((id: string) => onLanguage?.(id));

  useEffect(() => reportLanguage(language), [language]);

  // The editor and its model live as long as this component (one file).
  useEffect(() => {
    let disposed = false;
    const cleanup: Array<() => void> = [];
    loadFileLanguages().then(
      ({ monaco, followAppTheme }) => {
        if (disposed || !host.current) return;
        const uri = monaco.Uri.parse(
          `file:///sandbox-files/${++modelSeq}${path.startsWith('/') ? '' : '/'}${path}`,
        );
        const model = monaco.editor.createModel(value, language, uri);
        const editor = monaco.editor.create(host.current, {
          model,
          automaticLayout: true,
          minimap: { enabled: false },
          fontSize: 13,
          scrollBeyondLastLine: false,
          renderWhitespace: 'boundary',
          readOnly,
          ariaLabel,
          wordWrap: 'off',
          unicodeHighlight: { ambiguousCharacters: false },
        });
        editorRef.current = editor;
        cleanup.push(followAppTheme());
        const sub = model.onDidChangeContent(() => changed(model.getValue()));
        editor.addCommand(monaco.KeyMod.CtrlCmd | monaco.KeyCode.KeyS, () => save());
        cleanup.push(
          () => sub.dispose(),
          () => editor.dispose(),
          () => model.dispose(),
        );
        setReady(true);
      },
      (err: unknown) => !disposed && setFailed(err instanceof Error ? err.message : String(err)),
    );
    return () => {
      disposed = true;
      editorRef.current = null;
      for (const c of cleanup.reverse()) c();
    };
    // One editor per file: the parent keys this component by path.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  // A new value from outside (reloaded from the sandbox): replace the content, keep the undo stack.
  useEffect(() => {
    const editor = editorRef.current;
    const model = editor?.getModel();
    if (!ready || !editor || !model || model.getValue() === value) return;
    editor.pushUndoStop();
    model.pushEditOperations([], [{ range: model.getFullModelRange(), text: value }], () => null);
  }, [value, ready]);

  useEffect(() => {
    editorRef.current?.updateOptions({ readOnly });
  }, [readOnly]);

  return (
    <div className="code-editor-wrap" data-ready={ready ? 'true' : 'false'} data-language={language}>
      {!ready && !failed && (
        <pre className="file-text code-editor-fallback" aria-label={`${ariaLabel} (loading the editor)`}>
          {value}
        </pre>
      )}
      {failed && (
        <p className="fail-text small" role="alert">
          The editor could not load ({failed}); the text is shown as it is.
        </p>
      )}
      <div className="code-editor" ref={host} hidden={!ready} data-testid="code-editor" />
    </div>
  );
}
