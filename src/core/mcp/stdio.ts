/**
 * The MCP door over stdio: stdin and stdout carry the protocol (nothing else may write to stdout);
 * logs go to stderr. The server ends when the client closes stdin, or on close().
 */
import type { Readable, Writable } from 'node:stream';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { createMcpServer, type FluidMcpServer, type McpCore, type McpServerOptions } from './server.ts';

export interface McpStdio {
  server: FluidMcpServer;
  /** Resolves when the client went away (stdin ended) or close() was called. */
  closed: Promise<void>;
  close(): Promise<void>;
}

export async function serveMcpStdio(
  core: McpCore,
  opts: McpServerOptions,
  io: { stdin: Readable; stdout: Writable } = { stdin: process.stdin, stdout: process.stdout },
): Promise<McpStdio> {
  const server = createMcpServer(core, opts);
  const transport = new StdioServerTransport(io.stdin, io.stdout);
  let done!: () => void;
  const closed = new Promise<void>((resolve) => (done = resolve));
  let closing = false;
  const close = async () => {
    // The transport's onclose calls back in here while server.close() runs: once is enough.
    if (closing) return closed;
    closing = true;
    try {
      await server.close();
    } catch (err) {
      core.log?.warn('mcp stdio close failed', { err: (err as Error).message });
    }
    done();
  };
  transport.onclose = () => void close();
  const gone = () => void close();
  io.stdin.once('end', gone);
  io.stdin.once('close', gone);
  // A client that stops reading (EPIPE) is gone too.
  io.stdout.once('error', gone);
  await server.connect(transport);
  return { server, closed, close };
}
