/**
 * The MCP door over streamable HTTP, on loopback only.
 *
 * Every request must carry `Authorization: Bearer <token>` (a random token unless one is given), a
 * Host header naming this loopback server, and no foreign Origin: a web page cannot reach the server
 * through DNS rebinding or a cross-site request. Sessions are stateful (Mcp-Session-Id): each has its
 * own MCP server, so the client's name, its log level and cancellation work as on stdio. Calls that
 * wait for an approval keep their SSE response open (with keep-alive comments); if the client drops
 * that response the call is cancelled, since nothing could deliver its result any more.
 */
import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { createMcpServer, type FluidMcpServer, type McpCore, type McpServerOptions } from './server.ts';

export interface McpHttpOptions extends McpServerOptions {
  core: McpCore;
  /** Interface to bind; only loopback addresses are accepted. Default 127.0.0.1. */
  host?: string;
  /** Default 0: a free port. */
  port?: number;
  /** Default: random. */
  token?: string;
  /** Default /mcp. */
  path?: string;
  /** Browser origins allowed besides this server's own (e.g. a local MCP inspector UI). */
  extraOrigins?: string[];
  /** Open sessions at most; the longest idle one is dropped to make room. Default 32. */
  maxSessions?: number;
  /** Sessions idle (no request open) this long are closed. Default 1 hour. */
  idleSessionMs?: number;
}

export interface McpHttpServer {
  /** The MCP endpoint, e.g. http://127.0.0.1:41234/mcp */
  url: string;
  port: number;
  token: string;
  readonly sessions: number;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
const MAX_BODY = 4 * 1024 * 1024;

interface Session {
  transport: StreamableHTTPServerTransport;
  server: FluidMcpServer;
  lastSeen: number;
  open: number;
}

function rpcError(res: ServerResponse, status: number, code: number, message: string, headers = {}): void {
  if (res.headersSent) return void res.end();
  res
    .writeHead(status, { 'Content-Type': 'application/json', ...headers })
    .end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

function safeEqual(a: string, b: string): boolean {
  const ba = Buffer.from(a);
  const bb = Buffer.from(b);
  return ba.length === bb.length && timingSafeEqual(ba, bb);
}

function readBody(req: IncomingMessage): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_BODY) return resolve(null);
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        req.destroy();
        resolve(null);
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** The JSON-RPC request ids in a POST body (one message or a batch). */
function requestIds(body: unknown): Array<string | number> {
  const msgs = Array.isArray(body) ? body : [body];
  return msgs
    .filter((m): m is { id: string | number; method: string } => {
      const o = m as { id?: unknown; method?: unknown };
      return (
        typeof m === 'object' &&
        m !== null &&
        typeof o.method === 'string' &&
        (typeof o.id === 'string' || typeof o.id === 'number')
      );
    })
    .map((m) => m.id);
}

export async function startMcpHttpServer(opts: McpHttpOptions): Promise<McpHttpServer> {
  const host = opts.host ?? '127.0.0.1';
  if (!LOOPBACK.has(host)) throw new Error(`the MCP server binds to loopback only (got ${host})`);
  const token = opts.token ?? randomBytes(24).toString('base64url');
  if (token.length < 16) throw new Error('the MCP token must be at least 16 characters');
  const path = opts.path ?? '/mcp';
  const maxSessions = opts.maxSessions ?? 32;
  const idleMs = opts.idleSessionMs ?? 60 * 60 * 1000;
  const sessions = new Map<string, Session>();
  const sockets = new Set<Socket>();
  let allowedHosts = new Set<string>();
  let allowedOrigins = new Set<string>();
  let closing = false;

  /** A new session, or null when every session is busy and there is no room. */
  const newSession = async (): Promise<Session | null> => {
    if (sessions.size >= maxSessions) {
      const idle = [...sessions.values()].filter((s) => s.open === 0).sort((a, b) => a.lastSeen - b.lastSeen);
      if (!idle[0]) return null;
      await idle[0].transport.close();
    }
    const server = createMcpServer(opts.core, opts);
    const session: Session = {
      server,
      transport: undefined as unknown as StreamableHTTPServerTransport,
      lastSeen: Date.now(),
      open: 0,
    };
    session.transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => void sessions.set(id, session),
    });
    session.transport.onclose = () => {
      if (session.transport.sessionId) sessions.delete(session.transport.sessionId);
      void server.close();
    };
    await server.connect(session.transport);
    return session;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!allowedHosts.has(String(req.headers.host))) return rpcError(res, 421, -32000, 'Misdirected request');
    const origin = req.headers.origin;
    if (origin !== undefined && !allowedOrigins.has(origin)) {
      return rpcError(res, 403, -32000, `Forbidden origin ${origin}`);
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== path) return rpcError(res, 404, -32000, `Not found; the MCP endpoint is ${path}`);
    const auth = String(req.headers.authorization ?? '');
    const presented = /^Bearer\s+(.+)$/i.exec(auth)?.[1]?.trim() ?? '';
    if (!safeEqual(presented, token)) {
      return rpcError(res, 401, -32001, 'Unauthorized: send Authorization: Bearer <token>', {
        'WWW-Authenticate': 'Bearer realm="fluid-mcp"',
      });
    }
    if (closing) return rpcError(res, 503, -32000, 'The server is shutting down');
    if (!['POST', 'GET', 'DELETE'].includes(req.method ?? '')) {
      return rpcError(res, 405, -32000, 'Method not allowed', { Allow: 'POST, GET, DELETE' });
    }

    let body: unknown;
    if (req.method === 'POST') {
      const text = await readBody(req);
      if (text === null) return rpcError(res, 413, -32000, `Request body over ${MAX_BODY} bytes`);
      try {
        body = JSON.parse(text);
      } catch {
        return rpcError(res, 400, -32700, 'Parse error');
      }
    }

    const sid = req.headers['mcp-session-id'];
    let session: Session | undefined;
    if (typeof sid === 'string') {
      session = sessions.get(sid);
      if (!session) return rpcError(res, 404, -32001, 'Session not found');
    } else if (req.method === 'POST' && isInitializeRequest(body)) {
      const fresh = await newSession();
      if (!fresh) return rpcError(res, 503, -32000, `Too many open sessions (${maxSessions})`);
      session = fresh;
    } else {
      return rpcError(res, 400, -32000, 'Bad request: no valid Mcp-Session-Id (initialize first)');
    }

    session.open += 1;
    session.lastSeen = Date.now();
    const ids = requestIds(body);
    const s = session;
    res.on('close', () => {
      s.open -= 1;
      s.lastSeen = Date.now();
      // The response went away before it was complete: nobody can receive those results any more.
      if (!res.writableFinished && ids.length && !closing) {
        for (const requestId of ids) {
          const cancel: JSONRPCMessage = {
            jsonrpc: '2.0',
            method: 'notifications/cancelled',
            params: { requestId, reason: 'the client closed the connection' },
          };
          s.transport.onmessage?.(cancel);
        }
      }
    });
    await session.transport.handleRequest(req, res, body);
  };

  const http = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      opts.core.log?.error('mcp http request failed', { err: (err as Error).message });
      rpcError(res, 500, -32603, 'Internal error');
    });
  });
  http.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((ok, fail) => {
    http.once('error', fail);
    http.listen(opts.port ?? 0, host, () => ok());
  });
  const port = (http.address() as AddressInfo).port;
  const hostPart = host.includes(':') ? `[${host}]` : host;
  allowedHosts = new Set([`${hostPart}:${port}`, `localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]);
  allowedOrigins = new Set([
    `http://${hostPart}:${port}`,
    `http://localhost:${port}`,
    `http://127.0.0.1:${port}`,
    ...(opts.extraOrigins ?? []),
  ]);

  const sweeper = setInterval(
    () => {
      const now = Date.now();
      for (const s of sessions.values())
        if (s.open === 0 && now - s.lastSeen > idleMs) void s.transport.close();
    },
    Math.min(60_000, idleMs),
  );
  sweeper.unref();

  return {
    url: `http://${hostPart}:${port}${path}`,
    port,
    token,
    get sessions() {
      return sessions.size;
    },
    async close() {
      closing = true;
      clearInterval(sweeper);
      // Closing a session aborts its calls in flight (their approval requests are cancelled).
      await Promise.all([...sessions.values()].map((s) => s.transport.close().then(() => s.server.close())));
      await new Promise<void>((ok) => {
        http.close(() => ok());
        for (const s of sockets) s.destroy();
      });
    },
  };
}
