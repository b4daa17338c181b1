/**
 * The `fluid` CLI as one ESM bundle (out/cli/main.js), so a command starts without type-stripping a
 * few hundred TypeScript files: bin/fluid.js runs it when it is not older than its sources.
 *   npm run build:cli   (part of npm run build)
 * Files the CLI reads at run time keep their paths relative to the module that reads them: the
 * bundle sits two directories deep like src/cli/*.ts (so ../../package.json and ../../out/renderer
 * still resolve), code-split chunks stay beside it, Python programs are copied next to the chunk that
 * reads them, and npm dependencies stay external (resolved from node_modules, wasm included).
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { pythonAssets } from './python-assets.ts';
import { buildInputs } from './cli-inputs.ts';
import { lazyCommonJs } from './lazy-cjs.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

export default defineConfig({
  root,
  logLevel: 'warn',
  plugins: [
    pythonAssets(),
    // only commands that connect somewhere need ssh2
    lazyCommonJs({ ssh2: { classes: ['Client'] } }),
    buildInputs('inputs.json', [
      'package-lock.json',
      'scripts/build/cli.config.ts',
      'scripts/build/cli-inputs.ts',
      'scripts/build/lazy-cjs.ts',
      'scripts/build/python-assets.ts',
    ]),
  ],
  ssr: {
    // pure-JS dependencies every command loads go into the bundle (fewer files to find and read);
    // native, wasm and lazily loaded ones stay in node_modules
    noExternal: true,
    external: [
      'better-sqlite3', // native addon
      'ssh2', // resolved again at run time by src/core/ssh/ssh2-cert.ts: must be the same copy
      'web-tree-sitter', // loads its wasm relative to itself
      'tree-sitter-bash',
      // loaded lazily by the commands that need them
      'openai',
      '@anthropic-ai/sdk',
      '@modelcontextprotocol/sdk',
    ],
  },
  build: {
    ssr: 'src/cli/main.ts',
    outDir: 'out/cli',
    emptyOutDir: true,
    target: 'node24',
    minify: false,
    sourcemap: true,
    reportCompressedSize: false,
    rolldownOptions: {
      output: {
        format: 'es',
        entryFileNames: 'main.js',
        chunkFileNames: '[name]-[hash].js',
      },
    },
  },
});
