/**
 * `fluid serve`: web mode. One core, the built UI and the WebSocket API on loopback, and the HTTP API
 * (/v1/…, API tokens) on the same port. `fluid serve --api`: the HTTP API alone, on loopback or —
 * with TLS and a token — on a network address.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createCore } from '../core/createCore.ts';
import { startWebServer } from '../core/doors/web.ts';
import { createHttpApi } from '../core/doors/http/api.ts';
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
        api: { type: 'boolean' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'tls-generate': { type: 'boolean' },
        json: { type: 'boolean' },
        'data-dir': { type: 'string' },
        verbose: { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (e) {
    io.err(
      `${(e as Error).message}\nUsage: fluid serve [--port N] [--host 127.0.0.1] [--no-ui] [--ui-dir DIR]\n       fluid serve --api [--port N] [--host ADDR (--tls-cert FILE --tls-key FILE | --tls-generate)]`,
    );
    return 2;
  }
  if (values.api) return (await import('./serve-api.ts')).serveApi(values, g, io);
  if (values['tls-cert'] || values['tls-key'] || values['tls-generate']) {
    io.err(
      'TLS is for the API alone: fluid serve --api --host ADDR --tls-generate (the UI stays on loopback).',
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
    const api = createHttpApi(core);
    const server = await startWebServer({
      api,
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
      io.out(
        `API:  ${server.origin}/v1/  (OpenAPI: ${server.origin}/v1/openapi.json; tokens: fluid token create)`,
      );
      io.out(`Data: ${core.paths.dataDir}   (Ctrl+C stops)`);
    }
    core.log.info('web mode started', { origin: server.origin, pid: process.pid });
    await new Promise<void>((done) => {
      const stop = () => done();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    io.err('Stopping…');
    api.close();
    await server.close();
    await core.close();
    return 0;
  } catch (err) {
    printError(io, err);
    return 1;
  }
}
