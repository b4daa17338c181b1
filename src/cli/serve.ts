/** `fluid serve`: web mode. One core, the built UI and the WebSocket API on loopback. */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createCore } from '../core/createCore.ts';
import { startWebServer } from '../core/doors/web.ts';
import { createIo, printError } from './io.ts';

export const DEFAULT_UI_DIR = fileURLToPath(new URL('../../out/renderer', import.meta.url));

export async function serveCommand(argv: string[], g: { json: boolean; dataDir?: string }): Promise<number> {
  const io = createIo(g.json);
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        'no-ui': { type: 'boolean' },
        'ui-dir': { type: 'string' },
        token: { type: 'string' },
        json: { type: 'boolean' },
        'data-dir': { type: 'string' },
        verbose: { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (e) {
    io.err(
      `${(e as Error).message}\nUsage: fluid serve [--port N] [--host 127.0.0.1] [--no-ui] [--ui-dir DIR]`,
    );
    return 2;
  }
  const uiDir = values['no-ui'] ? null : resolve(values['ui-dir'] ?? DEFAULT_UI_DIR);
  if (uiDir && !existsSync(resolve(uiDir, 'index.html'))) {
    io.err(
      `The UI is not built (${uiDir}/index.html is missing). Run \`npm run build\`, or pass --no-ui for the API only.`,
    );
    return 1;
  }
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    io.err(`--port must be a number from 0 to 65535 (got ${values.port}).`);
    return 2;
  }
  try {
    const core = createCore({
      dataDir: g.dataDir ? resolve(g.dataDir) : undefined,
      verbose: !!values.verbose,
    });
    core.startBackground();
    const server = await startWebServer({
      core,
      host: values.host ?? '127.0.0.1',
      port,
      staticDir: uiDir,
      token: values.token,
      writeDiscoveryFile: true,
    });
    if (g.json)
      io.out(
        JSON.stringify({
          url: server.url,
          origin: server.origin,
          port: server.port,
          dataDir: core.paths.dataDir,
          pid: process.pid,
        }),
      );
    else {
      io.out(`Fluid is running in web mode.`);
      io.out(`Open: ${server.url}`);
      io.out(`Data: ${core.paths.dataDir}   (Ctrl+C stops)`);
    }
    core.log.info('web mode started', { origin: server.origin, pid: process.pid });
    await new Promise<void>((done) => {
      const stop = () => done();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    io.err('Stopping…');
    await server.close();
    await core.close();
    return 0;
  } catch (err) {
    printError(io, err);
    return 1;
  }
}
