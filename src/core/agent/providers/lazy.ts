/**
 * The provider clients (and, for listing models, the SDKs) load on first use, not with every CLI
 * command.
 */
import type { ModelEvent, ModelProvider, ModelRequest, ProviderConfig } from './types.ts';
import type { listModels } from './index.ts';

export function createProviderLazy(config: ProviderConfig): ModelProvider {
  let real: ModelProvider | null = null;
  return {
    kind: config.kind,
    model: config.model,
    stream(req: ModelRequest): AsyncIterable<ModelEvent> {
      // Once loaded, the client's own stream (no extra async step for every event).
      if (real) return real.stream(req);
      return (async function* () {
        real ??= (await import('./index.ts')).createProvider(config);
        yield* real.stream(req);
      })();
    },
  } as ModelProvider;
}

export async function listModelsLazy(
  config: Parameters<typeof listModels>[0],
  signal?: AbortSignal,
): Promise<string[]> {
  return (await import('./index.ts')).listModels(config, signal);
}
