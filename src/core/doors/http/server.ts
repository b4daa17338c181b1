/**
 * `fluid serve --api`: the HTTP API on its own server, without the UI.
 *
 * Loopback by default (plain HTTP; the Host header must name this server, which defeats DNS
 * rebinding). A network address needs TLS — a certificate the person supplies, or one Fluid
 * generates — and at least one API token; a network bind without TLS is refused. Every request
 * except /health and /v1/openapi.json needs a token either way, and a browser Origin other than the
 * server's own is refused (no CORS: a web page cannot call the API).
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { FluidError } from '../../../shared/errors.ts';
import type { Core } from '../../createCore.ts';
import { createHttpApi, type HttpApi, type HttpApiOptions } from './api.ts';
import { sendError } from './errors.ts';
import type { TlsMaterial } from './tls.ts';

export interface HttpApiServerOptions {
  core: Core;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: a free port. */
  port?: number;
  tls?: TlsMaterial | null;
  /** Passed to the API (tests). */
  api?: HttpApiOptions;
}

export interface HttpApiServer {
  /** Base URL, e.g. http://127.0.0.1:41234 */
  url: string;
  port: number;
  api: HttpApi;
  tls: TlsMaterial | null;
  close(): Promise<void>;
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** Refuses a network bind without TLS or without any token (see the module comment). */
export function checkBind(core: Core, host: string, tls: TlsMaterial | null | undefined): void {
  if (isLoopback(host)) return;
  if (!tls)
    throw new FluidError(
      'DENIED',
      `Refusing to serve the API on ${host} without TLS: tokens would cross the network in clear. Pass --tls-cert FILE --tls-key FILE, or --tls-generate for a certificate Fluid makes (its fingerprint is printed), or bind to 127.0.0.1.`,
    );
  if (core.tokens.count() === 0)
    throw new FluidError(
      'DENIED',
      `Refusing to serve the API on ${host}: no API token exists, so nothing could use it. Create one first: fluid token create --scope agent --name <name>.`,
    );
}

export async function startHttpApiServer(opts: HttpApiServerOptions): Promise<HttpApiServer> {
  const host = opts.host ?? '127.0.0.1';
  const tls = opts.tls ?? null;
  checkBind(opts.core, host, tls);
  const api = createHttpApi(opts.core, opts.api);
  const loopback = isLoopback(host);
  let allowedHosts = new Set<string>();
  let origins = new Set<string>();
  const sockets = new Set<Socket>();

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    if (loopback && !allowedHosts.has(String(req.headers.host)))
      return void sendError(res, new FluidError('DENIED', 'Misdirected request (Host).'), 421);
    const origin = req.headers.origin;
    if (origin !== undefined && !origins.has(origin))
      return void sendError(
        res,
        new FluidError('DENIED', `Requests from the web origin ${origin} are refused.`),
        403,
      );
    if (!api.owns(req))
      return void sendError(
        res,
        new FluidError(
          'NOT_FOUND',
          'This server has the HTTP API only (/v1/…, /health); the UI runs with `fluid serve`.',
        ),
      );
    api.handle(req, res);
  };
  const server = tls
    ? createHttpsServer({ cert: tls.cert, key: tls.key }, onRequest)
    : createHttpServer(onRequest);
  // long calls (a blocking ask, a sandbox created through the original body) keep a request open
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 65_000;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 0, host, () => ok());
  });
  const port = (server.address() as AddressInfo).port;
  const scheme = tls ? 'https' : 'http';
  const hostPart = host.includes(':') ? `[${host}]` : host;
  allowedHosts = new Set([`${hostPart}:${port}`, `localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]);
  origins = new Set([...allowedHosts].map((h) => `${scheme}://${h}`));
  return {
    url: `${scheme}://${hostPart}:${port}`,
    port,
    api,
    tls,
    close: async () => {
      api.close();
      await new Promise<void>((ok) => {
        server.close(() => ok());
        for (const s of sockets) s.destroy();
      });
    },
  };
}
