import { FluidError, cancelled } from '../../../shared/errors.ts';
import { AnthropicProvider } from './anthropic.ts';
import { OpenAIProvider } from './openai.ts';
import { classifyError, retryPolicy } from './retry.ts';
import { defaultBaseUrl, isProviderKind, type ModelProvider, type ProviderConfig } from './types.ts';

export * from './types.ts';
export { AnthropicProvider } from './anthropic.ts';
export { OpenAIProvider } from './openai.ts';

export function createProvider(config: ProviderConfig): ModelProvider {
  if (!isProviderKind(config.kind)) {
    throw new FluidError(
      'VALIDATION',
      `Unknown provider kind ${JSON.stringify(config.kind)}: use anthropic or openai.`,
    );
  }
  if (!config.model) throw new FluidError('VALIDATION', 'No model is set for the provider.');
  return config.kind === 'anthropic' ? new AnthropicProvider(config) : new OpenAIProvider(config);
}

/**
 * The models the service offers (`GET /v1/models`), which also proves the base URL and the key:
 * the settings UI's "Test connection". No retries; errors are FluidErrors like the stream's. Through
 * the official SDKs (their pagination), loaded here only: model turns do not need them.
 */
export async function listModels(
  config: Omit<ProviderConfig, 'model'> & { model?: string },
  signal?: AbortSignal,
): Promise<string[]> {
  const baseUrl = (config.baseUrl || defaultBaseUrl(config.kind)).replace(/\/+$/, '');
  const label = {
    name: config.kind === 'anthropic' ? 'Anthropic' : 'The model server',
    baseUrl,
    apiKey: config.apiKey,
  };
  const timeout = Math.min(retryPolicy(config as ProviderConfig).timeoutMs, 30_000);
  const common = {
    baseURL: baseUrl,
    maxRetries: 0,
    timeout,
    logLevel: 'off' as const,
    ...(config.headers ? { defaultHeaders: config.headers } : {}),
  };
  try {
    const ids: string[] = [];
    if (config.kind === 'anthropic') {
      const { default: Anthropic } = await import('@anthropic-ai/sdk');
      const client = new Anthropic({ ...common, apiKey: config.apiKey || 'missing' });
      for await (const m of client.models.list({ limit: 100 }, { signal })) ids.push(m.id);
    } else {
      const { default: OpenAI } = await import('openai');
      const client = new OpenAI({
        ...common,
        apiKey: config.apiKey || 'no-key',
        organization: null,
        project: null,
      });
      for await (const m of client.models.list({ signal })) ids.push(m.id);
    }
    return ids;
  } catch (err) {
    if (signal?.aborted) throw cancelled('Listing the models');
    throw classifyError(err, label).error;
  }
}
