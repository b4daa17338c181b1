/**
 * The egress proxy's source: `proxy.py` beside this file (python3 standard library, Python 3.9+).
 *
 * It is read at run time relative to this module, so the same code works from the source tree (the
 * CLI runs TypeScript directly) and from the Electron bundle, where the build copies `proxy.py` next
 * to the chunk that holds this module (see scripts/build/python-assets.ts). It is sent to the host
 * over the proxy process's own stdin (see `proxyCommand`), so nothing is written to the host's disk
 * and a stale copy can never run.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FluidError } from '../../shared/errors.ts';

/** Control protocol version the proxy speaks (its VERSION constant). */
export const PROXY_SCRIPT_VERSION = 2;

/** Where the proxy's source is read from. */
export const PROXY_SOURCE_URL = new URL('./proxy.py', import.meta.url);

let cached: string | null = null;

/** The proxy's Python source (ASCII). Throws INTERNAL when the installation lacks the file. */
export function proxyScript(): string {
  if (cached !== null) return cached;
  let src: string;
  try {
    src = readFileSync(PROXY_SOURCE_URL, 'utf8');
  } catch (e) {
    throw new FluidError(
      'INTERNAL',
      `The egress proxy's source ${fileURLToPath(PROXY_SOURCE_URL)} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): this Fluid installation is incomplete; reinstall or rebuild it.`,
    );
  }
  cached = src;
  return src;
}
