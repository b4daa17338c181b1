/**
 * Serves the scripted model server until killed.
 *
 *   node scripts/scripted-model.ts --scenario file.yaml [--port N] [--host 127.0.0.1] [--verbose]
 *
 * Prints one JSON line once listening: {"url", "port", "anthropicBaseUrl", "openaiBaseUrl"}.
 * Without --scenario it starts with no steps; POST a scenario to /_scripted/scenario.
 */
import { parseArgs } from 'node:util';
import { ScenarioError, startScriptedModelServer } from '../src/core/agent/scripted/server.ts';

const USAGE =
  'usage: node scripts/scripted-model.ts [--scenario file.yaml] [--port N] [--host H] [--verbose]';

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        scenario: { type: 'string', short: 's' },
        port: { type: 'string', short: 'p' },
        host: { type: 'string' },
        verbose: { type: 'boolean', short: 'v' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`--port must be a port number, got ${values.port}\n${USAGE}`);
    process.exit(2);
  }
  let server;
  try {
    server = await startScriptedModelServer({
      ...(values.scenario ? { scenario: values.scenario } : {}),
      port,
      ...(values.host ? { host: values.host } : {}),
      ...(values.verbose ? { log: (line: string) => console.error(line) } : {}),
    });
  } catch (err) {
    console.error(err instanceof ScenarioError ? err.message : `cannot start: ${(err as Error).message}`);
    process.exit(1);
  }
  console.log(
    JSON.stringify({
      url: server.url,
      port: server.port,
      anthropicBaseUrl: server.anthropicBaseUrl,
      openaiBaseUrl: server.openaiBaseUrl,
    }),
  );
  const stop = () => {
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

await main();
