/**
 * `fluid serve --api`: the HTTP API without the UI. Loopback by default; a network address needs TLS
 * (--tls-cert/--tls-key, or --tls-generate: Fluid makes a certificate and prints its fingerprint)
 * and at least one API token, or it is refused.
 */
import { resolve } from 'node:path';
import { createCore } from '../core/createCore.ts';
import { isLoopback, startHttpApiServer } from '../core/doors/http/server.ts';
import { generatedTls, loadTls, type TlsMaterial } from '../core/doors/http/tls.ts';
import { printError, type Io } from './io.ts';

export async function serveApi(
  values: Record<string, string | boolean | undefined>,
  g: { json: boolean; dataDir?: string },
  io: Io,
): Promise<number> {
  const host = (values.host as string | undefined) ?? '127.0.0.1';
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    io.err(`--port must be a number from 0 to 65535 (got ${String(values.port)}).`);
    return 2;
  }
  const cert = values['tls-cert'] as string | undefined;
  const key = values['tls-key'] as string | undefined;
  if (!!cert !== !!key) {
    io.err('--tls-cert and --tls-key go together.');
    return 2;
  }
  if (values['no-ui'] || values['ui-dir'] || values.token) {
    io.err('--api serves no UI: --no-ui, --ui-dir and --token are for `fluid serve`.');
    return 2;
  }
  let core;
  try {
    core = createCore({ dataDir: g.dataDir ? resolve(g.dataDir) : undefined, verbose: !!values.verbose });
    let tls: TlsMaterial | null = null;
    if (cert && key) tls = loadTls(resolve(cert), resolve(key));
    else if (values['tls-generate']) tls = generatedTls(core.paths.dataDir, host);
    core.startBackground();
    const server = await startHttpApiServer({ core, host, port, tls });
    const info = {
      url: server.url,
      port: server.port,
      openapi: `${server.url}/v1/openapi.json`,
      tls: tls ? { fingerprint: tls.fingerprint, certificate: tls.certPath, generated: tls.generated } : null,
      dataDir: core.paths.dataDir,
      pid: process.pid,
    };
    if (g.json) io.out(JSON.stringify(info));
    else {
      io.out('Fluid HTTP API is running (no UI).');
      io.out(`URL:     ${server.url}/v1/   (OpenAPI: ${info.openapi})`);
      if (tls)
        io.out(
          `TLS:     ${tls.generated ? 'certificate made by Fluid' : 'your certificate'} ${tls.certPath}\n         SHA-256 fingerprint ${tls.fingerprint} — compare it on the client before trusting it`,
        );
      if (!isLoopback(host)) io.out('Network: every request needs an API token (fluid token list).');
      io.out(`Data:    ${core.paths.dataDir}   (Ctrl+C stops)`);
    }
    core.log.info('http api started', { url: server.url, pid: process.pid });
    await new Promise<void>((done) => {
      process.once('SIGINT', () => done());
      process.once('SIGTERM', () => done());
    });
    io.err('Stopping…');
    await server.close();
    await core.close();
    return 0;
  } catch (err) {
    printError(io, err);
    await core?.close();
    return 1;
  }
}
