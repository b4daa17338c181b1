/**
 * The provider price from the CLI: a model nothing prices makes `fluid run` refuse before any
 * model call, with the command that fixes it; `fluid provider update --price-in/--price-out` sets
 * the person's price, `--table-price` drops it again. A price lower than what the model costs now widens
 * every cost cap counted with it: only a person on a terminal sets it (a script, or an agent's shell, is
 * refused and nothing changes); raising a price needs no one.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { fluid, fluidOnTerminal } from '../../support/cli.ts';
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

  // Pricing a model nothing priced lets sessions spend on it: not from a process without a terminal.
  const unattended = await cli(['provider', 'update', 'router', '--price-in', '2', '--price-out', '8']);
  assert.equal(unattended.code, 1);
  assert.match(
    unattended.stderr,
    /Only a person can set the price of model "vendor\/brand-new-model".*no terminal/,
  );
  const still = (await cli(['provider', 'list', '--json'])).json<Provider[]>()[0]!;
  assert.equal(still.priceSource, 'unknown', 'the refused update changed nothing');

  // A person at a terminal is asked, and a "no" changes nothing either.
  const declined = await fluidOnTerminal(
    ['provider', 'update', 'router', '--price-in', '2', '--price-out', '8'],
    {
      dataDir: dir,
      answer: 'no\n',
    },
  );
  assert.notEqual(declined.code, 0, declined.out);
  assert.match(declined.out, /nothing prices it now/);
  assert.equal((await cli(['provider', 'list', '--json'])).json<Provider[]>()[0]!.priceSource, 'unknown');
  const confirmed = await fluidOnTerminal(
    ['provider', 'update', 'router', '--price-in', '2', '--price-out', '8', '--json'],
    { dataDir: dir, answer: 'yes\n' },
  );
  assert.equal(confirmed.code, 0, confirmed.out);
  const p = (await cli(['provider', 'list', '--json'])).json<Provider[]>()[0]!;
  assert.deepEqual([p.inputPerMTok, p.outputPerMTok, p.priceSource], [2, 8, 'person']);
  assert.equal(p.model, 'vendor/brand-new-model', 'update keeps what it is not given');

  // Raising it needs no one; lowering it again does, and the attempt leaves the price as it was.
  const raised = await cli(['provider', 'update', 'router', '--price-in', '3', '--price-out', '9', '--json']);
  assert.equal(raised.code, 0, raised.stderr);
  assert.deepEqual([raised.json<Provider>().inputPerMTok, raised.json<Provider>().outputPerMTok], [3, 9]);
  const lowered = await cli(['provider', 'update', 'router', '--price-in', '0', '--price-out', '9']);
  assert.equal(lowered.code, 1);
  assert.match(lowered.stderr, /it costs \$3 in \/ \$9 out per million tokens now/);
  const kept = (await cli(['provider', 'list', '--json'])).json<Provider[]>()[0]!;
  assert.deepEqual([kept.inputPerMTok, kept.outputPerMTok], [3, 9]);
  // Changing something else keeps the price and asks nothing.
  const renamed = await cli(['provider', 'update', 'router', '--label', 'Router', '--json']);
  assert.equal(renamed.code, 0, renamed.stderr);
  assert.deepEqual([renamed.json<Provider>().label, renamed.json<Provider>().inputPerMTok], ['Router', 3]);

  const dropped = await cli(['provider', 'update', 'router', '--table-price', '--json']);
  assert.equal(dropped.json<Provider>().priceSource, 'unknown');

  const missing = await cli(['provider', 'update', 'nobody', '--price-in', '1', '--price-out', '1']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /No provider "nobody"/);
});
