/**
 * A core in a temp dir with an AgentService on a registry of small tools, the scripted model server
 * as the model, and contract clients (agent members included) for any actor.
 */
import { z } from 'zod';
import { contract, type Contract } from '../../../src/shared/contract/index.ts';
import type { AgentEvent, Session } from '../../../src/shared/contract/agent.ts';
import { memoryPortPair, RpcClient, type Actor } from '../../../src/shared/rpc.ts';
import { serve, type Router } from '../../../src/core/rpc/server.ts';
import { ToolRegistry } from '../../../src/core/agent/tools/registry.ts';
import { AgentService, type AgentDeps } from '../../../src/core/agent/service.ts';
import { agentRoutes } from '../../../src/core/agent/routes.ts';
import {
  startScriptedModelServer,
  type ScriptedModelServer,
} from '../../../src/core/agent/scripted/server.ts';
import type { ScenarioInput } from '../../../src/core/agent/scripted/scenario.ts';
import { testCore } from '../../support/core.ts';

export const MODEL_KEY = 'sk-ant-test-harness-key-0123456789abcdef';

export const PEM = [
  '-----BEGIN OPENSSH PRIVATE KEY-----',
  'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW',
  'QyNTUxOQAAACDxq2xP3m4ZP0mTLb4KqT1rJv4i1F9W2lZ3eVq0kM5QAAAAJhT0r3lU9K9',
  '-----END OPENSSH PRIVATE KEY-----',
].join('\n');
export const PASSWORD = 'Tr0ub4dor-and-3';
export const API_KEY_IN_OUTPUT = 'sk-proj-Qw3rTy0912AbCdEfGhIjKlMnOp';

export interface Harness {
  core: ReturnType<typeof testCore>;
  tools: ToolRegistry;
  agent: AgentService;
  server: ScriptedModelServer;
  /** A contract client acting as `actor` (default: a person at the test door). */
  client(actor?: Actor): RpcClient<Contract>;
  /** Calls made to the fake tools, by name. */
  calls: Array<{ name: string; input: unknown; actor: Actor; mode: string }>;
  /** Called after each fake tool call is recorded; returns an unsubscribe function. */
  onCall(listener: () => void): () => void;
  /** Resolves the `slow` tool's pending calls. */
  release(): void;
  dispose(): Promise<void>;
}

export async function harness(opts: { deps?: Partial<AgentDeps> } = {}): Promise<Harness> {
  const core = testCore();
  const server = await startScriptedModelServer();
  const tools = new ToolRegistry({ approvals: core.approvals, audit: core.audit, settings: core.settings });
  const calls: Harness['calls'] = [];
  const callListeners = new Set<() => void>();
  let releasers: Array<() => void> = [];
  const record = (name: string, input: unknown, ctx: { actor: Actor; mode: string }) => {
    calls.push({ name, input, actor: ctx.actor, mode: ctx.mode });
    for (const l of callListeners) l();
  };

  tools.register({
    name: 'echo',
    description: 'Echo a text back.',
    input: z.object({ text: z.string() }),
    readOnly: true,
    risk: 'low',
    summarize: (i) => `echo ${i.text}`,
    run: async (i, ctx) => {
      record('echo', i, ctx);
      return { content: `echo: ${i.text}` };
    },
  });
  tools.register({
    name: 'write_note',
    description: 'Write a note (changes something).',
    input: z.object({ note: z.string() }),
    readOnly: false,
    risk: 'medium',
    summarize: (i) => `write_note ${i.note}`,
    run: async (i, ctx) => {
      record('write_note', i, ctx);
      return { content: `wrote ${i.note}` };
    },
  });
  tools.register({
    name: 'destroy_thing',
    description: 'Destroy a thing. Irreversible.',
    input: z.object({ thing: z.string() }),
    readOnly: false,
    risk: 'high',
    summarize: (i) => `destroy_thing ${i.thing}`,
    run: async (i, ctx) => {
      record('destroy_thing', i, ctx);
      return { content: `destroyed ${i.thing}` };
    },
  });
  tools.register({
    name: 'slow',
    description: 'Wait until released or cancelled.',
    input: z.object({}),
    readOnly: true,
    risk: 'low',
    summarize: () => 'slow',
    run: (i, ctx) => {
      record('slow', i, ctx);
      return new Promise((resolve, reject) => {
        const onAbort = () => reject(new DOMException('aborted', 'AbortError'));
        ctx.signal.addEventListener('abort', onAbort, { once: true });
        releasers.push(() => {
          ctx.signal.removeEventListener('abort', onAbort);
          resolve({ content: 'slow: finished' });
        });
      });
    },
  });
  tools.register({
    name: 'dump',
    description: 'Print a file.',
    input: z.object({ what: z.enum(['big', 'secrets']) }),
    readOnly: true,
    risk: 'low',
    summarize: (i) => `dump ${i.what}`,
    run: async (i, ctx) => {
      record('dump', i, ctx);
      if (i.what === 'big')
        return {
          content: Array.from(
            { length: 2000 },
            (_, n) => `line ${String(n).padStart(4, '0')} ${'x'.repeat(40)}`,
          ).join('\n'),
        };
      return {
        content: `# /etc/app/config\n${PEM}\ndb_password = ${PASSWORD}\nOPENAI_API_KEY=${API_KEY_IN_OUTPUT}\nlisten 8080\n`,
      };
    },
  });

  const agent = new AgentService({
    db: core.db,
    bus: core.bus,
    audit: core.audit,
    settings: core.settings,
    secrets: core.secrets,
    approvals: core.approvals,
    presence: core.presence,
    tools,
    clock: core.clock,
    log: core.log,
    providerTuning: { maxRetries: 2, retryBaseDelayMs: 5, maxRetryDelayMs: 20 },
    pollMs: 50,
    ...opts.deps,
  });
  const router = { ...core.router, ...agentRoutes({ agent }) } as Router<Contract>;
  const clients: Array<RpcClient<Contract>> = [];
  return {
    core,
    tools,
    agent,
    server,
    calls,
    onCall(listener) {
      callListeners.add(listener);
      return () => callListeners.delete(listener);
    },
    client(actor: Actor = { door: 'test', id: 'person' }) {
      const [a, b] = memoryPortPair();
      serve(contract, router, core.bus, b, { actor });
      const c = new RpcClient(contract, a);
      clients.push(c);
      return c;
    },
    release() {
      const r = releasers;
      releasers = [];
      for (const f of r) f();
    },
    async dispose() {
      await agent.close();
      await server.close();
      await core.dispose();
    },
  };
}

/** Add a provider for the scripted server and make it the default. */
export async function addScriptedProvider(
  h: Harness,
  kind: 'anthropic' | 'openai' = 'anthropic',
  extra: {
    contextTokens?: number;
    inputPerMTok?: number | null;
    outputPerMTok?: number | null;
    id?: string;
  } = {},
) {
  return h.client().call('providers.save', {
    id: extra.id ?? `scripted-${kind}`,
    kind,
    label: `Scripted (${kind})`,
    baseUrl: kind === 'anthropic' ? h.server.anthropicBaseUrl : h.server.openaiBaseUrl,
    model: 'scripted-model',
    apiKey: MODEL_KEY,
    isDefault: true,
    // The scripted model is in no price table: free, as a self-hosted model would be set up.
    inputPerMTok: 0,
    outputPerMTok: 0,
    ...extra,
  });
}

export function load(h: Harness, scenario: ScenarioInput): void {
  h.server.load(scenario);
}

/** Collect the watch stream of a session until `until` holds (or the status is terminal). */
export async function watchUntil(
  h: Harness,
  sessionId: string,
  until: (ev: AgentEvent, all: AgentEvent[]) => boolean = (ev) =>
    ev.type === 'status' && ['done', 'stopped', 'failed', 'idle'].includes(ev.session.status),
  timeoutMs = 10_000,
): Promise<AgentEvent[]> {
  const all: AgentEvent[] = [];
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  try {
    for await (const ev of h.client().stream('agent.watch', { sessionId }, { signal: ac.signal })) {
      all.push(ev);
      if (ev.type === 'snapshot' && until(ev, all)) break;
      if (ev.type !== 'snapshot' && until(ev, all)) break;
    }
  } catch (err) {
    if (!ac.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  if (!all.some((e) => until(e, all)))
    throw new Error(
      `watch: condition not met in ${timeoutMs} ms; events: ${JSON.stringify(all.map((e) => e.type))}`,
    );
  return all;
}

export const isEnd = (s: Session) => ['done', 'stopped', 'failed', 'idle'].includes(s.status);

/** The recorded model requests (message API calls only). */
export function modelRequests(h: Harness): Array<{ body: Record<string, unknown>; step: string | null }> {
  return h.server.requests
    .filter((r) => r.api === 'anthropic' || r.api === 'openai')
    .map((r) => ({ body: r.body as Record<string, unknown>, step: r.step }));
}

/**
 * Resolves once the recorded fake tool calls satisfy `pred`: checked at once and on every new call
 * (no polling). The timeout only turns a hang into a readable failure.
 */
export function waitForCalls(
  h: Harness,
  pred: (calls: Harness['calls']) => boolean,
  what: string,
  hangAfterMs = 30_000,
): Promise<void> {
  if (pred(h.calls)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const off = h.onCall(() => {
      if (!pred(h.calls)) return;
      off();
      clearTimeout(timer);
      resolve();
    });
    const timer = setTimeout(() => {
      off();
      reject(new Error(`never happened: ${what} (calls: ${JSON.stringify(h.calls.map((c) => c.name))})`));
    }, hangAfterMs);
  });
}
