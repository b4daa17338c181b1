/**
 * The provider price from the CLI: a model nothing prices makes `fluid run` refuse before any
 * model call, with the command that fixes it; `fluid provider update --price-in/--price-out` sets
 * the person's price, `--table-price` drops it again.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { fluid } from '../../support/cli.ts';
import { tempDir } from '../../support/core.ts';
import type { Provider } from '../../../src/shared/contract/agent.ts';

const { dir, cleanup } = tempDir('fluid-provider-cli-');
after(cleanup);
const cli = (args: string[]) => fluid(args, { dataDir: dir, timeoutMs: 60_000 });

test('an unpriced model: run refuses and says how; update sets the price; --table-price drops it', async () => {
  // An endpoint nobody listens on: a run that got as far as calling the model would fail differently.
  const add = await cli([
    'provider',
    'add',
    'router',
    '--kind',
    'openai',
    '--model',
    'vendor/brand-new-model',
    '--base-url',
    'http://203.0.113.1:9/v1',
    '--json',
  ]);
  assert.equal(add.code, 0, add.stderr);
  assert.equal(add.json<Provider>().priceSource, 'unknown');
  const human = await cli(['provider', 'list']);
  assert.match(human.stdout, /unknown \(set one\)/);

  const refused = await cli(['run', 'do something', '--provider', 'router', '--no-prompt']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /no price for model "vendor\/brand-new-model"/);
  assert.match(refused.stderr, /fluid provider update router --price-in/);
  const sessions = await cli(['session', 'list', '--json']);
  assert.deepEqual(sessions.json(), [], 'no session was started');

  const half = await cli(['provider', 'update', 'router', '--price-in', '2', '--json']);
  assert.equal(half.code, 1);
  assert.equal(half.json<{ error: { code: string; message: string } }>().error.code, 'VALIDATION');
  assert.match(half.stdout, /give both the input and the output price/);

  const set = await cli(['provider', 'update', 'router', '--price-in', '2', '--price-out', '8', '--json']);
  assert.equal(set.code, 0, set.stderr);
  const p = set.json<Provider>();
  assert.deepEqual([p.inputPerMTok, p.outputPerMTok, p.priceSource], [2, 8, 'person']);
  assert.equal(p.model, 'vendor/brand-new-model', 'update keeps what it is not given');

  const dropped = await cli(['provider', 'update', 'router', '--table-price', '--json']);
  assert.equal(dropped.json<Provider>().priceSource, 'unknown');

  const missing = await cli(['provider', 'update', 'nobody', '--price-in', '1', '--price-out', '1']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /No provider "nobody"/);
});
