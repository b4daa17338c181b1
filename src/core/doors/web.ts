/**
 * Web mode: serves the built renderer and the contract over a WebSocket on loopback.
 *
 * The socket requires a random token (carried in the WebSocket subprotocol list, never in the URL the
 * server logs) and a same-origin Origin header; the Host header must name the loopback address, which
 * defeats DNS rebinding. The page is served with a strict Content-Security-Policy.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync, unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { userInfo } from 'node:os';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Port } from '../../shared/rpc.ts';
import { RPC_PATH, RPC_PROTOCOL, TOKEN_PROTOCOL_PREFIX } from '../../shared/web.ts';
import type { Core } from '../createCore.ts';

export interface WebServerOptions {
  core: Core;
  /** Interface to bind; only loopback addresses are accepted. */
  host?: string;
  port?: number;
  /** Built renderer (out/renderer); null serves the API only. */
  staticDir?: string | null;
  token?: string;
  /** Extra allowed origins (e.g. a Vite dev server). */
  extraOrigins?: string[];
  /** Write server.json (origin, port, pid and the token's sha256 — never the token) into the data dir. */
  writeDiscoveryFile?: boolean;
  /**
   * The HTTP API (src/core/doors/http) on the same port: it answers /v1/…, /api/v1/… and /health,
   * after the same Host and Origin checks; its requests carry API tokens, never the UI's token.
   */
  api?: { owns(req: IncomingMessage): boolean; handle(req: IncomingMessage, res: ServerResponse): void };
}

export interface WebServer {
  url: string;
  origin: string;
  port: number;
  token: string;
  readonly connections: number;
  close(): Promise<void>;
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
  '.ttf': 'font/ttf',
};

export function contentSecurityPolicy(origin: string): string {
  const ws = origin.replace(/^http/, 'ws');
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    `connect-src 'self' ${ws}`,
    "img-src 'self' data:",
    "font-src 'self' data:",
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export function portFromNodeWebSocket(ws: WebSocket): Port {
  return {
    send: (m) => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(m));
    },
    onMessage: (h) =>
      ws.on('message', (data, isBinary) => {
        if (isBinary) return ws.close(1003, 'text frames only');
        let parsed: unknown;
        try {
          parsed = JSON.parse(data.toString());
        } catch {
          return ws.close(1007, 'invalid JSON');
        }
        h(parsed);
      }),
    onClose: (h) => ws.on('close', () => h()),
    close: () => ws.close(1000),
  };
}

export async function startWebServer(opts: WebServerOptions): Promise<WebServer> {
  const host = opts.host ?? '127.0.0.1';
  if (!LOOPBACK.has(host)) throw new Error(`web mode binds to loopback only (got ${host})`);
  const token = opts.token ?? randomBytes(24).toString('base64url');
  const staticDir = opts.staticDir ? resolve(opts.staticDir) : null;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: 64 * 1024 * 1024,
    handleProtocols: (protocols) => (protocols.has(RPC_PROTOCOL) ? RPC_PROTOCOL : false),
  });
  let origin = '';
  let allowedHosts = new Set<string>();
  let allowedOrigins = new Set<string>();
  const sockets = new Set<Socket>();

  const server = createServer((req, res) => {
    if (opts.api?.owns(req)) {
      const json = { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff' };
      if (!allowedHosts.has(String(req.headers.host)))
        return void res
          .writeHead(421, json)
          .end(JSON.stringify({ code: 'DENIED', message: 'Misdirected request (Host).' }));
      const o = req.headers.origin;
      if (o !== undefined && !allowedOrigins.has(o))
        return void res
          .writeHead(403, json)
          .end(JSON.stringify({ code: 'DENIED', message: `Requests from the web origin ${o} are refused.` }));
      return opts.api.handle(req, res);
    }
    serveStatic(req, res);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  const reject = (socket: Socket, status: number, text: string) => {
    socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  };

  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const url = new URL(req.url ?? '/', origin);
    if (url.pathname !== RPC_PATH) return reject(socket, 404, 'Not Found');
    if (!allowedHosts.has(String(req.headers.host))) return reject(socket, 421, 'Misdirected Request');
    const reqOrigin = req.headers.origin;
    if (reqOrigin !== undefined && !allowedOrigins.has(reqOrigin)) return reject(socket, 403, 'Forbidden');
    const offered = String(req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim());
    const presented =
      offered.find((p) => p.startsWith(TOKEN_PROTOCOL_PREFIX))?.slice(TOKEN_PROTOCOL_PREFIX.length) ?? '';
    if (!safeEqual(presented, token)) return reject(socket, 401, 'Unauthorized');
    wss.handleUpgrade(req, socket, head, (ws) => {
      const who = reqOrigin ? 'browser' : 'client';
      opts.core.serve(portFromNodeWebSocket(ws), { door: 'web', id: `${who}:${osUser()}` });
    });
  });

  function serveStatic(req: IncomingMessage, res: ServerResponse): void {
    const security = {
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Resource-Policy': 'same-origin',
      'X-Frame-Options': 'DENY',
    };
    if (!allowedHosts.has(String(req.headers.host))) {
      res.writeHead(421, security).end('Misdirected request');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...security, Allow: 'GET, HEAD' }).end();
      return;
    }
    const url = new URL(req.url ?? '/', origin);
    if (url.pathname === '/healthz') {
      res
        .writeHead(200, { ...security, 'Content-Type': 'application/json' })
        .end(JSON.stringify({ ok: true }));
      return;
    }
    if (!staticDir) {
      res.writeHead(404, security).end('This server has no UI (API only).');
      return;
    }
    let rel: string;
    try {
      rel = decodeURIComponent(url.pathname);
    } catch {
      res.writeHead(400, security).end();
      return;
    }
    let file = normalize(join(staticDir, rel));
    if (!file.startsWith(staticDir + sep) && file !== staticDir) {
      res.writeHead(403, security).end();
      return;
    }
    if (!existsSync(file) || statSync(file).isDirectory()) file = join(staticDir, 'index.html');
    if (!existsSync(file)) {
      res.writeHead(503, security).end('The UI is not built. Run `npm run build` first.');
      return;
    }
    const isHtml = extname(file) === '.html';
    res.writeHead(200, {
      ...security,
      'Content-Type': MIME[extname(file)] ?? 'application/octet-stream',
      'Cache-Control': isHtml ? 'no-store' : 'public, max-age=31536000, immutable',
      ...(isHtml ? { 'Content-Security-Policy': contentSecurityPolicy(origin) } : {}),
    });
    res.end(req.method === 'HEAD' ? undefined : readFileSync(file));
  }

  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 0, host, () => ok());
  });
  const port = (server.address() as AddressInfo).port;
  const hostPart = host.includes(':') ? `[${host}]` : host;
  origin = `http://${hostPart}:${port}`;
  allowedHosts = new Set([`${hostPart}:${port}`, `localhost:${port}`, `127.0.0.1:${port}`]);
  allowedOrigins = new Set([
    origin,
    `http://localhost:${port}`,
    `http://127.0.0.1:${port}`,
    ...(opts.extraOrigins ?? []),
  ]);
  // The URL a person opens names `localhost`: browsers refuse WebAuthn (security keys) on IP addresses.
  const uiOrigin = `http://localhost:${port}`;
  const url = `${uiOrigin}/#token=${token}`;
  if (staticDir) opts.core.presence.addOrigin(uiOrigin);

  // The discovery file tells local tools where the server is, never how to get in: the token lives only
  // in the URL the person was shown (a same-user process reading the data dir cannot connect as them).
  const discovery = join(opts.core.paths.dataDir, 'server.json');
  if (opts.writeDiscoveryFile) {
    const tokenSha256 = createHash('sha256').update(token).digest('hex');
    writeFileSync(discovery, JSON.stringify({ origin: uiOrigin, port, tokenSha256, pid: process.pid }), {
      mode: 0o600,
    });
    if (process.platform !== 'win32') chmodSync(discovery, 0o600);
  }

  return {
    url,
    origin,
    port,
    token,
    get connections() {
      return wss.clients.size;
    },
    close: async () => {
      opts.core.presence.removeOrigin(uiOrigin);
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      await new Promise<void>((ok) => {
        server.close(() => ok());
        for (const s of sockets) s.destroy();
      });
      if (opts.writeDiscoveryFile && existsSync(discovery)) {
        try {
          const d = JSON.parse(readFileSync(discovery, 'utf8')) as { pid: number };
          if (d.pid === process.pid) unlinkSync(discovery);
        } catch {
          /* leave it */
        }
      }
    },
  };
}

function safeEqual(a: string, b: string): boolean {
  const ba = Buffer.from(a);
  const bb = Buffer.from(b);
  return ba.length === bb.length && timingSafeEqual(ba, bb);
}

function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}
