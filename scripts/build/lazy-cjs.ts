/**
 * A build plugin for the CLI bundle: CommonJS dependencies that only some commands use are loaded on
 * first use instead of at every start (ssh2 and its crypto cost ~50 ms of a `fluid host list`, which
 * never opens a connection). Imports of such a module are served by a small facade:
 *   - the default export forwards property reads (`ssh2.utils…`) to the real module;
 *   - each listed class is a stand-in whose `new` builds the real class's instance and whose
 *     `instanceof` asks the real class.
 * The real module is required with createRequire from the bundle, so it is the same copy any other
 * code resolves from there. An import of a name the facade does not list fails the build.
 */
import type { Plugin } from 'vite';

const PREFIX = '\0fluid-lazy-cjs:';

export function lazyCommonJs(modules: Record<string, { classes: string[] }>): Plugin {
  return {
    name: 'fluid:lazy-cjs',
    apply: 'build',
    enforce: 'pre',
    resolveId(source) {
      return Object.hasOwn(modules, source) ? `${PREFIX}${source}` : null;
    },
    load(id) {
      if (!id.startsWith(PREFIX)) return null;
      const name = id.slice(PREFIX.length);
      const spec = JSON.stringify(name);
      const classes = modules[name]!.classes.map(
        (c) => `export const ${c} = class ${c} {
  constructor(...args) { return new (load().${c})(...args); }
  static [Symbol.hasInstance](value) { return value instanceof load().${c}; }
};`,
      );
      return [
        `import { createRequire } from 'node:module';`,
        `let real;`,
        `const load = () => (real ??= createRequire(import.meta.url)(${spec}));`,
        `export default new Proxy({}, { get: (_target, key) => load()[key], has: (_target, key) => key in load() });`,
        ...classes,
      ].join('\n');
    },
  };
}
