/**
 * A build plugin that writes the list of source files a bundle was made from (paths relative to the
 * project root), so a launcher can tell whether the bundle is older than its sources.
 */
import { isAbsolute, relative, resolve } from 'node:path';
import type { Plugin } from 'vite';

export function buildInputs(fileName: string, always: string[] = []): Plugin {
  let root = '';
  const extra = new Set<string>();
  return {
    name: 'fluid:build-inputs',
    apply: 'build',
    configResolved(config) {
      root = config.root;
    },
    transform(code, id) {
      // files read at run time through new URL('./x', import.meta.url) count as inputs too
      const file = id.split('?')[0]!;
      for (const m of code.matchAll(/new URL\(\s*(['"])(\.\/[\w./-]+)\1\s*,\s*import\.meta\.url\s*\)/g))
        extra.add(new URL(m[2]!, `file://${file}`).pathname);
      return null;
    },
    generateBundle(_options, bundle) {
      // the dependencies bundled in, and how the bundle is made
      const files = new Set<string>([...extra, ...always.map((f) => resolve(root, f))]);
      for (const chunk of Object.values(bundle))
        if (chunk.type === 'chunk')
          for (const id of chunk.moduleIds) {
            const file = id.split('?')[0]!;
            // our files; virtual modules have no path, dependencies count through package-lock.json
            if (isAbsolute(file) && !file.includes('/node_modules/')) files.add(file);
          }
      const inputs = [...files]
        .map((f) => relative(root, f))
        .filter((f) => !f.startsWith('..'))
        .sort();
      this.emitFile({ type: 'asset', fileName, source: `${JSON.stringify({ inputs }, null, 1)}\n` });
    },
  };
}
