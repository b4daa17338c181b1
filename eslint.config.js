// Lint rules double as the layer fences of the architecture (see README, "Architecture").
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import reactHooks from 'eslint-plugin-react-hooks';
import globals from 'globals';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`), 'node:*'];
const fence = (message, paths, patterns = []) => ({
  'no-restricted-imports': [
    'error',
    {
      paths: paths.map((name) => ({ name, message })),
      patterns: patterns.map((group) => ({ group: [group], message })),
    },
  ],
});

export default tseslint.config(
  { ignores: ['out/**', 'dist/**', 'node_modules/**', 'test-artifacts/**', '.tools/**', 'scratch/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      'no-console': 'off',
    },
  },
  {
    files: ['src/shared/**'],
    rules: fence(
      'src/shared is the contract: pure TypeScript, no Node, no DOM-only APIs, no electron, no core.',
      [...nodeBuiltins, 'electron', 'react', 'ws', 'ssh2', 'better-sqlite3'],
      ['**/core/**', '**/main/**', '**/renderer/**', '**/cli/**', '**/preload/**'],
    ),
  },
  {
    files: ['src/core/**', 'src/cli/**'],
    rules: fence(
      'core and the CLI are plain Node: electron and the UI layers are off limits.',
      ['electron', 'react', 'react-dom'],
      ['**/main/**', '**/renderer/**', '**/preload/**'],
    ),
  },
  {
    files: ['src/renderer/**'],
    languageOptions: { globals: { ...globals.browser } },
    plugins: { 'react-hooks': reactHooks },
    rules: {
      ...reactHooks.configs.recommended.rules,
      ...fence(
        'The renderer talks to the backend only through the contract client: no Node, no electron, no core.',
        [...nodeBuiltins, 'electron', 'ws', 'ssh2', 'better-sqlite3'],
        ['**/core/**', '**/main/**', '**/cli/**', '**/preload/**'],
      ),
    },
  },
  {
    files: ['src/preload/**'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      ...fence('The preload hands one MessagePort to the page and nothing else.', nodeBuiltins, [
        '**/core/**',
        '**/renderer/**',
        '**/cli/**',
        '**/shared/**',
      ]),
      'no-restricted-properties': [
        'error',
        {
          object: 'contextBridge',
          property: 'exposeInMainWorld',
          message: 'Expose nothing: the port is posted to the page.',
        },
        { object: 'contextBridge', property: 'exposeInIsolatedWorld', message: 'Expose nothing.' },
      ],
    },
  },
  {
    files: ['src/main/**'],
    rules: fence('The Electron shell never imports UI code.', ['react', 'react-dom'], ['**/renderer/**']),
  },
);
