// The editor core entry point has no declaration file of its own: it exports the editor API.
declare module 'monaco-editor/esm/vs/editor/edcore.main.js' {
  export * from 'monaco-editor';
}
