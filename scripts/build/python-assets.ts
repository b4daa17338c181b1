/**
 * A build plugin for bundles that carry Python programs and scenario files: every `.py` or `.yaml`
 * file a module reads with `new URL('./name.py', import.meta.url)` (or `./dir/name.yaml`) is copied to
 * the same relative place beside the output chunk that holds that module, so the same relative read
 * works in the bundle as in the source tree (where the CLI runs the TypeScript directly). Used by
 * electron.vite.config.ts for the main process and by the CLI bundle.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import type { Plugin } from 'vite';

const PY_URL_RE = /new URL\(\s*(['"])\.\/((?:[\w-]+\/)*[\w.-]+\.(?:py|yaml))\1\s*,\s*import\.meta\.url\s*\)/g;

export function pythonAssets(): Plugin {
  /** Module id → the files it reads, relative to the module. */
  const wanted = new Map<string, string[]>();
  return {
    name: 'fluid:python-assets',
    apply: 'build',
    transform(code, id) {
      const file = id.split('?')[0]!;
      if (!/\.[cm]?[jt]sx?$/.test(file)) return null;
      const found = [...code.matchAll(PY_URL_RE)].map((m) => m[2]!);
      if (found.length) {
        wanted.set(file, found);
        for (const f of found) this.addWatchFile(join(dirname(file), f));
      }
      return null;
    },
    generateBundle(_options, bundle) {
      const emitted = new Set<string>();
      for (const chunk of Object.values(bundle)) {
        if (chunk.type !== 'chunk') continue;
        for (const id of chunk.moduleIds) {
          const module = id.split('?')[0]!;
          for (const rel of wanted.get(module) ?? []) {
            const fileName = posix.join(posix.dirname(chunk.fileName), rel);
            if (emitted.has(fileName)) continue;
            emitted.add(fileName);
            this.emitFile({ type: 'asset', fileName, source: readFileSync(join(dirname(module), rel)) });
          }
        }
      }
    },
  };
}
