import { createProvider } from '../../../src/core/agent/providers/index.ts';
import type {
  Message,
  ModelEvent,
  ModelProvider,
  ModelRequest,
  ProviderConfig,
  ProviderKind,
  ToolDefinition,
} from '../../../src/core/agent/providers/types.ts';
import type { ScriptedModelServer } from '../../../src/core/agent/scripted/server.ts';

export const API_KEY = 'sk-test-Zq8-secret-key-1234567890';

export const TOOLS: ToolDefinition[] = [
  {
    name: 'run_command',
    description: 'Run a shell command in a sandbox.',
    inputSchema: {
      type: 'object',
      properties: { sandbox_id: { type: 'string' }, command: { type: 'string' } },
      required: ['sandbox_id', 'command'],
    },
  },
  {
    name: 'list_vms',
    description: 'List the source VMs.',
    inputSchema: { type: 'object', properties: {} },
  },
];

export function providerFor(
  server: ScriptedModelServer,
  kind: ProviderKind,
  extra: Partial<ProviderConfig> = {},
): ModelProvider {
  return createProvider({
    kind,
    baseUrl: kind === 'anthropic' ? server.anthropicBaseUrl : server.openaiBaseUrl,
    model: 'scripted-model',
    apiKey: API_KEY,
    maxRetries: 3,
    retryBaseDelayMs: 5,
    ...extra,
  });
}

export const user = (text: string): Message => ({ role: 'user', content: [{ type: 'text', text }] });

export function request(messages: Message[], extra: Partial<ModelRequest> = {}): ModelRequest {
  return {
    system: 'You are Fluid, an infrastructure agent.',
    messages,
    tools: TOOLS,
    maxTokens: 1024,
    ...extra,
  };
}

export interface Run {
  events: ModelEvent[];
  text: string;
  done: Extract<ModelEvent, { type: 'done' }>;
  usage: Extract<ModelEvent, { type: 'usage' }> | undefined;
  retries: Array<Extract<ModelEvent, { type: 'retry' }>>;
  toolUses: Array<Extract<ModelEvent, { type: 'tool_use' }>>;
}

/** Streams one request to the end. */
export async function run(provider: ModelProvider, req: ModelRequest): Promise<Run> {
  const events: ModelEvent[] = [];
  for await (const ev of provider.stream(req)) events.push(ev);
  const done = events.at(-1);
  if (!done || done.type !== 'done')
    throw new Error(`the stream did not end with done: ${JSON.stringify(events)}`);
  return {
    events,
    text: events
      .filter((e) => e.type === 'text_delta')
      .map((e) => e.text)
      .join(''),
    done,
    usage: events.find((e) => e.type === 'usage'),
    retries: events.filter((e) => e.type === 'retry'),
    toolUses: events.filter((e) => e.type === 'tool_use'),
  };
}

/** Streams and returns the error thrown (fails when none is). */
export async function runError(
  provider: ModelProvider,
  req: ModelRequest,
  events: ModelEvent[] = [],
): Promise<Error> {
  try {
    for await (const ev of provider.stream(req)) events.push(ev);
  } catch (err) {
    return err as Error;
  }
  throw new Error(`expected an error, got events ${JSON.stringify(events)}`);
}
