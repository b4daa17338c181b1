/**
 * `fluid mcp`: Fluid's agent tools for external agents (Claude Code, any MCP client), through the
 * same gate as the built-in agent (mode, policy rules, approvals, audit).
 *
 *   fluid mcp [--read-only]                              stdio (stdout is the protocol, logs on stderr)
 *   fluid mcp --http [--port N] [--host 127.0.0.1] [--token T] [--read-only]
 *                                                        streamable HTTP on loopback, bearer token
 *
 * Claude Code:  claude mcp add fluid -- fluid mcp
 *               claude mcp add --transport http fluid http://127.0.0.1:PORT/mcp \
 *                 --header "Authorization: Bearer TOKEN"
 * Calls that need approval wait until a person decides in the Fluid app or on their own terminal (the
 * client is never told how to decide); raise the client's tool timeout if it is short (Claude Code:
 * MCP_TOOL_TIMEOUT in ms).
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createCore, type Core } from '../core/createCore.ts';
import { startMcpHttpServer } from '../core/mcp/http.ts';
import { serveMcpStdio } from '../core/mcp/stdio.ts';
import type { AgentMode } from '../shared/contract/agent.ts';
import type { Command } from './command.ts';
import { createIo, printError } from './io.ts';

const USAGE =
  'fluid mcp [--read-only] [--http [--port N] [--host 127.0.0.1] [--token T] [--allow-origin URL]] [--verbose]';

/**
 * SIGINT / SIGTERM, listened for from the start: a signal that arrives while the server is still
 * starting (or right after it printed its URL) stops it cleanly too.
 */
function listenForSignals(): { signalled: Promise<string>; dispose(): void } {
  let dispose = () => {};
  const signalled = new Promise<string>((resolve) => {
    const int = () => resolve('SIGINT');
    const term = () => resolve('SIGTERM');
    process.once('SIGINT', int);
    process.once('SIGTERM', term);
    dispose = () => {
      process.off('SIGINT', int);
      process.off('SIGTERM', term);
    };
  });
  return { signalled, dispose };
}

export async function mcpCommand(argv: string[], g: { json: boolean; dataDir?: string }): Promise<number> {
  const io = createIo(g.json);
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        'read-only': { type: 'boolean' },
        http: { type: 'boolean' },
        port: { type: 'string' },
        host: { type: 'string' },
        token: { type: 'string' },
        'allow-origin': { type: 'string', multiple: true },
        verbose: { type: 'boolean' },
        json: { type: 'boolean' },
        'data-dir': { type: 'string' },
      },
      strict: true,
    }));
  } catch (e) {
    io.err(`${(e as Error).message}\nUsage: ${USAGE}`);
    return 2;
  }
  const http = !!values.http;
  if (!http && (values.port !== undefined || values.host !== undefined || values.token !== undefined)) {
    io.err(`--port, --host and --token are for --http.\nUsage: ${USAGE}`);
    return 2;
  }
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    io.err(`--port must be a number from 0 to 65535 (got ${values.port}).`);
    return 2;
  }
  const token = values.token ?? (process.env.FLUID_MCP_TOKEN || undefined);
  if (token !== undefined && token.length < 16) {
    io.err('The token must be at least 16 characters.');
    return 2;
  }
  const mode: AgentMode = values['read-only'] ? 'read-only' : 'edit';

  if (!http) {
    // stdout carries the protocol: anything printed through console goes to stderr instead.
    const toStderr = (...a: unknown[]) => console.error(...a);
    console.log = toStderr;
    console.info = toStderr;
    console.debug = toStderr;
  }

  let core: Core | null = null;
  const signals = listenForSignals();
  try {
    core = createCore({
      dataDir: g.dataDir ? resolve(g.dataDir) : undefined,
      verbose: !!values.verbose,
    });
    const c = core;
    // A session can last hours: enforce sandbox time limits and clean up after crashes here too.
    c.startBackground();
    const tools = c.tools.list(mode).length;

    if (!http) {
      const stdio = await serveMcpStdio(c, { mode });
      c.log.info('mcp stdio started', { mode, pid: process.pid, tools });
      io.err(`Fluid MCP server on stdio (${mode} mode, ${tools} tools, data ${c.paths.dataDir}).`);
      const why = await Promise.race([signals.signalled, stdio.closed.then(() => 'client closed stdin')]);
      await stdio.close();
      c.log.info('mcp stdio stopped', { why });
      return 0;
    }

    const server = await startMcpHttpServer({
      core: c,
      mode,
      host: values.host ?? '127.0.0.1',
      port,
      token,
      extraOrigins: values['allow-origin'],
    });
    c.log.info('mcp http started', { url: server.url, mode, pid: process.pid, tools });
    if (g.json) {
      io.out(
        JSON.stringify({
          url: server.url,
          port: server.port,
          token: server.token,
          mode,
          tools,
          dataDir: c.paths.dataDir,
          pid: process.pid,
        }),
      );
    } else {
      io.out(`Fluid MCP server (streamable HTTP, ${mode} mode, ${tools} tools)`);
      io.out(`URL:   ${server.url}`);
      io.out(`Token: ${server.token}   (send it as: Authorization: Bearer <token>)`);
      io.out(`Data:  ${c.paths.dataDir}   (Ctrl+C stops)`);
      io.out('');
      io.out(
        `Claude Code: claude mcp add --transport http fluid ${server.url} --header "Authorization: Bearer ${server.token}"`,
      );
    }
    const why = await signals.signalled;
    io.err('Stopping…');
    c.log.info('mcp http stopping', { why });
    await server.close();
    return 0;
  } catch (err) {
    printError(io, err);
    return 1;
  } finally {
    signals.dispose();
    await core?.close();
  }
}

export const mcpCommands: Record<string, Command> = {
  mcp: {
    summary: "MCP server: Fluid's agent tools for Claude Code and other MCP clients (stdio or HTTP).",
    usage: USAGE,
    raw: (argv, g) => mcpCommand(argv, g),
  },
};
