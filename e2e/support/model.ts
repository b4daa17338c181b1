/**
 * The scripted model server (src/core/agent/scripted) in this process, for agent tests: a real HTTP
 * server speaking the Anthropic and OpenAI wire formats, answering from a scenario and recording
 * every request. Closed on t.after; a test that fails prints the requests that matched no step.
 */
import type { TestContext } from 'node:test';
import {
  startScriptedModelServer,
  type ScenarioInput,
  type ScriptedModelServer,
} from '../../src/core/agent/scripted/server.ts';

export type { ScriptedModelServer, ScenarioInput };

export async function startModelServer(
  t: TestContext,
  scenario: ScenarioInput,
): Promise<ScriptedModelServer> {
  const server = await startScriptedModelServer({ scenario });
  t.after(async () => {
    if (server.mismatches.length)
      process.stderr.write(
        `scripted model: ${server.mismatches.length} request(s) matched no step:\n${server.mismatches
          .map((m) => `  #${m.seq}: ${m.message}`)
          .join('\n')}\n`,
      );
    await server.close();
  });
  return server;
}

/** The tool names a recorded model request offered (both wire formats). */
export function offeredTools(body: unknown): string[] {
  const tools = (body as { tools?: unknown } | null)?.tools;
  if (!Array.isArray(tools)) return [];
  return tools
    .map((t: { name?: unknown; function?: { name?: unknown } }) => t.name ?? t.function?.name)
    .filter((n): n is string => typeof n === 'string');
}
