/** Test helpers: a fresh core in a temp data dir, torn down after the test. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCore, type Core, type CoreOptions } from '../../src/core/createCore.ts';
import { MemorySecretStore } from '../../src/core/platform/secrets.ts';
import { createLogger } from '../../src/core/platform/logger.ts';

export function tempDir(prefix = 'fluid-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function testCore(opts: Partial<CoreOptions> = {}): Core & { dispose: () => Promise<void> } {
  const { dir, cleanup } = tempDir();
  const core = createCore({
    dataDir: dir,
    secrets: new MemorySecretStore(),
    logger: createLogger({ level: 'error', stderr: !!process.env.FLUID_TEST_LOG }),
    ...opts,
  });
  return Object.assign(core, {
    dispose: async () => {
      await core.close();
      cleanup();
    },
  });
}
