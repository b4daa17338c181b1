/**
 * The app's one Monaco: the editor core (no language services bundled in), its workers built by Vite
 * (never a CDN), and the themes following the app's. Every editor in the app — playbooks, sandbox
 * files — loads it through load.ts, so the core and its workers exist once. A feature that brings a
 * language worker (monaco-yaml) registers it here by label.
 */
import * as monacoApi from 'monaco-editor/esm/vs/editor/edcore.main.js';
import type * as Monaco from 'monaco-editor';
import EditorWorker from 'monaco-editor/esm/vs/editor/editor.worker.js?worker';

export type MonacoNamespace = typeof Monaco;
export const monaco = monacoApi as unknown as MonacoNamespace;

const workers = new Map<string, () => Worker>();

/** A language worker by the label Monaco asks for (e.g. "yaml"); the editor worker otherwise. */
export function registerWorker(label: string, make: () => Worker): void {
  workers.set(label, make);
}

(globalThis as { MonacoEnvironment?: unknown }).MonacoEnvironment = {
  getWorker(_moduleId: string, label: string): Worker {
    return workers.get(label)?.() ?? new EditorWorker();
  },
};

/** Monaco's theme for the app's current one. */
export function themeName(): string {
  return document.documentElement.dataset.theme === 'dark' ? 'vs-dark' : 'vs';
}

/** Switch Monaco's theme whenever the app's changes; returns the stop function. */
export function followAppTheme(): () => void {
  monaco.editor.setTheme(themeName());
  const observer = new MutationObserver(() => monaco.editor.setTheme(themeName()));
  observer.observe(document.documentElement, { attributes: true, attributeFilter: ['data-theme'] });
  return () => observer.disconnect();
}
