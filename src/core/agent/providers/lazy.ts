/**
 * The provider SDKs are large; load them on the first model call, not with every CLI command.
 */
import type { ModelProvider, ModelRequest, ProviderConfig } from './types.ts';
import type { listModels } from './index.ts';

export function createProviderLazy(config: ProviderConfig): ModelProvider {
  let real: ModelProvider | null = null;
  return {
    kind: config.kind,
    model: config.model,
    async *stream(req: ModelRequest) {
      real ??= (await import('./index.ts')).createProvider(config);
      yield* real.stream(req);
    },
  } as ModelProvider;
}

export async function listModelsLazy(
  config: Parameters<typeof listModels>[0],
  signal?: AbortSignal,
): Promise<string[]> {
  return (await import('./index.ts')).listModels(config, signal);
}
