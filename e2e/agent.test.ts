/**
 * The agent, end to end against the scripted model server (no VM boots, no lab): register the model
 * through Settings → Providers and Test it, make two tools ask through Settings → Agent, then run a
 * session: streamed text, tool calls with their cards, a rate-limit retry, approvals decided inline and
 * in the modal, output kept behind a handle, the token meter, read-only via Shift+Tab (the next model
 * request offers only read-only tools), and Stop in the middle of a long reply.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  AgentPage,
  AgentSettingsPage,
  ApprovalModal,
  ApprovalsPage,
  PresenceDialog,
  ProvidersPage,
  offeredTools,
  openApp,
  startModelServer,
  waitFor,
  waitForText,
  type ScenarioInput,
} from './support/index.ts';

/** get_playbook's YAML goes over a 1000-character context budget: its middle is cut for the model. */
const MOTD = `${'Managed by Fluid. '.repeat(45)}MIDDLE-OF-MOTD ${'Managed by Fluid. '.repeat(45)}`;
const LONG_REPORT = Array.from(
  { length: 60 },
  (_, i) => `Section ${i + 1}: everything about the hosts, the VMs and the playbook, in detail.`,
).join('\n');
const READ_ONLY_TOOLS = new Set([
  'list_hosts',
  'list_vms',
  'list_sandboxes',
  'get_sandbox',
  'read_file',
  'list_snapshots',
  'run_source_command',
  'read_source_file',
  'list_playbooks',
  'get_playbook',
  'read_tool_output',
  'diff_sandbox',
  'list_targets',
  'get_change',
]);
const usage = (inputTokens: number, outputTokens: number) => ({ inputTokens, outputTokens });

const SCENARIO: ScenarioInput = {
  name: 'e2e-agent',
  steps: [
    {
      id: 'hosts',
      match: { turn: 'user', lastUserText: 'Inventory' },
      text: 'Let me look at the hosts first, then at the VMs on them.',
      toolCalls: [{ name: 'list_hosts', input: {} }],
      usage: usage(1800, 40),
      chunkDelayMs: 150,
      chunkSize: 5,
    },
    { id: 'rate-limited', error: { status: 429, headers: { 'retry-after': '1' } } },
    {
      id: 'vms',
      match: { toolResult: { tool: 'list_hosts' } },
      text: 'One host. Now its VMs.',
      toolCalls: [{ name: 'list_vms', input: { host: 'local' } }],
      usage: usage(2100, 30),
    },
    {
      id: 'playbook',
      match: { toolResult: { tool: 'list_vms' } },
      toolCalls: [{ name: 'create_playbook', input: { name: 'e2e-inventory' } }],
      usage: usage(2400, 25),
    },
    {
      id: 'tasks',
      match: { toolResult: { tool: 'create_playbook', isError: false } },
      text: 'Adding a task, then reading the playbook back.',
      toolCalls: [
        {
          name: 'add_playbook_task',
          input: {
            playbook: 'e2e-inventory',
            name: 'Write the motd',
            module: 'ansible.builtin.copy',
            params: { dest: '/etc/motd', content: MOTD },
          },
        },
        { name: 'get_playbook', input: { playbook: 'e2e-inventory' } },
      ],
      usage: usage(2900, 600),
    },
    {
      id: 'report',
      match: { toolResult: { tool: 'get_playbook' } },
      text: 'Done: the playbook `e2e-inventory` has one task (it writes /etc/motd).',
      usage: usage(3300, 30),
    },
    {
      id: 'read-only',
      match: { turn: 'user', lastUserText: 'Anything else' },
      text: 'In read-only mode I can only look: there is nothing else to change.',
      usage: usage(3500, 20),
    },
    {
      id: 'long',
      match: { turn: 'user', lastUserText: 'long report' },
      text: LONG_REPORT,
      chunkDelayMs: 120,
      chunkSize: 12,
    },
  ],
};

test('an agent session: streaming, tool calls, approvals inline and in the modal, read-only, stop', async (t) => {
  const model = await startModelServer(t, SCENARIO);
  const app = await openApp(t, { name: 'agent' });
  const { page, shell } = app;

  // ---- Settings → Providers: the scripted model as an Anthropic provider, tested.
  await shell.goto('Settings');
  const providers = new ProvidersPage(page);
  await providers.open();
  await page.getByRole('heading', { name: 'No providers yet' }).waitFor();
  // A price for a model nothing prices: the person confirms it (the cost cap counts with it).
  const asked = await providers.add({
    preset: 'Anthropic',
    label: 'Scripted',
    baseUrl: model.url,
    model: 'scripted-model',
    apiKey: 'sk-ant-e2e-not-a-real-key',
    inputPerMTok: 3,
    outputPerMTok: 15,
    confirmPrice: true,
  });
  assert.match(
    asked ?? '',
    /price of model "scripted-model" .* to \$3 in \/ \$15 out per million tokens \(nothing prices it now/,
  );
  await providers.waitForBadge('Scripted', /key stored/);
  assert.ok((await providers.badges('Scripted')).includes('default'), 'the first provider is the default');
  const tested = await providers.test('Scripted');
  assert.ok(tested.ok, tested.text);
  assert.deepEqual(tested.models, ['scripted-model']);
  await app.shot('provider tested');

  // ---- Settings → Agent: small tool output budget, and two tools that ask.
  const agentSettings = new AgentSettingsPage(page);
  await agentSettings.open();
  await agentSettings.setNumber('agent.toolOutputChars', '1000');
  await agentSettings.addRule({ tool: 'create_playbook', decision: 'ask' });
  await agentSettings.addRule({
    tool: 'add_playbook_*',
    args: { module: '^ansible\\.builtin\\.copy$' },
    mode: 'edit',
    decision: 'ask',
  });
  await app.shot('approval rules');
  await agentSettings.save();
  // changed rules may loosen them: the person confirms it is them
  await new PresenceDialog(page).confirm();
  await agentSettings.waitSaved();

  // ---- Agent: start a session.
  await shell.goto('Agent');
  const agent = new AgentPage(page);
  await agent.emptyState.waitFor();
  await agent.openNew();
  await app.shot('new session form');
  const sessionId = await agent.start({
    task: 'Inventory the hosts and their VMs, then start a playbook for the motd.',
  });
  assert.ok(sessionId);
  assert.equal(await agent.mode(), 'edit');

  // The reply streams in before it is persisted.
  const streamed = await waitForText(agent.partial, /Let me look/, 15_000);
  assert.ok(streamed.length < 'Let me look at the hosts first, then at the VMs on them.'.length + 2);
  await app.shot('streaming');
  await agent.waitForReply(/^Let me look at the hosts first, then at the VMs on them\.$/);
  await agent.toolCard('list_hosts').waitStatus('done');
  assert.match(await agent.toolCard('list_hosts').output(), /"host": "local"/);

  // A 429 is retried after its retry-after, and says so.
  await waitForText(agent.retryNotices, /Rate limited \(429\), retrying in [\d.]+ s/);
  const vms = agent.toolCard('list_vms');
  await vms.waitStatus('done');
  assert.equal(await vms.summary(), 'host=local');

  // ---- create_playbook asks: in the modal and on its card. "Later", then approve on the card.
  const modal = new ApprovalModal(page);
  const approvals = new ApprovalsPage(page);
  await modal.waitOpen(30_000);
  assert.equal(await modal.kind(), 'tool');
  assert.equal(await modal.title(), 'create_playbook e2e-inventory');
  await waitForText(modal.root.getByTestId('approval-tool'), /^create_playbook$/);
  await waitForText(modal.root.getByLabel('Tool arguments'), /name\s*e2e-inventory/);
  await waitForText(modal.root.getByTestId('approval-session'), /^Inventory the hosts and their VMs/);
  assert.match(await modal.askedBy(), new RegExp(`^agent:${sessionId}$`));
  await app.shot('approval modal');
  await modal.close(); // Later
  await modal.waitClosed();
  const create = agent.toolCard('create_playbook');
  await create.waitStatus('waiting-approval');
  assert.equal(await agent.status(), 'waiting-approval');
  await app.shot('approval inline');
  await create.decide('Approve');
  await create.waitStatus('done');
  assert.match(await create.decision(), /^Approved by web:/);
  assert.match(await create.output(), /Created playbook e2e-inventory/);

  // ---- add_playbook_task asks too (rule 2: the module matches); get_playbook waits its turn.
  // Approve in the modal this time: the card follows.
  await modal.waitOpen(30_000);
  assert.equal(await modal.title(), 'add_playbook_task e2e-inventory: Write the motd');
  await waitForText(modal.root.getByLabel('Tool arguments'), /module\s*ansible\.builtin\.copy/);
  const addTask = agent.toolCard('add_playbook_task');
  await addTask.waitStatus('waiting-approval');
  assert.equal(await agent.toolCard('get_playbook').status(), 'queued');
  await modal.decide('Approve');
  await modal.waitClosed();
  await addTask.waitStatus('done');
  assert.equal(await addTask.approval.count(), 0, 'no inline buttons once decided in the modal');
  assert.match(await addTask.decision(), /^Approved by web:/);

  // get_playbook's YAML is over the 1000-character budget: cut for the model, whole on demand.
  const get = agent.toolCard('get_playbook');
  await get.waitStatus('done');
  const cut = await get.output();
  assert.match(cut, /characters cut here/);
  assert.ok(!cut.includes('MIDDLE-OF-MOTD'), 'the transcript copy is cut in the middle');
  const full = await get.fullOutput();
  assert.ok(full.includes('MIDDLE-OF-MOTD'), 'the full output has the middle');
  assert.ok(full.length > cut.length);
  await app.shot('full output');

  // ---- The final reply; the meter moved; nothing waits any more.
  await agent.waitForReply(/^Done: the playbook e2e-inventory has one task/);
  await agent.waitStatus('done');
  const meter = await agent.meter();
  assert.equal(meter.inputTokens, 1800 + 2100 + 2400 + 2900 + 3300);
  assert.equal(meter.outputTokens, 40 + 30 + 25 + 600 + 30);
  assert.equal(meter.contextTokens, 3300);
  assert.equal(meter.steps, 5);
  assert.ok(meter.costUsd > 0, `cost ${meter.costUsd}`);
  assert.match(meter.text, /12\.5k in · 725 out/);
  assert.equal(await approvals.pendingCount(), 0);
  assert.equal(await modal.root.count(), 0, 'a decided request is not asked again');
  const items = await agent.sessions();
  assert.equal(items.length, 1);
  assert.equal(items[0]!.status, 'done');
  assert.match(items[0]!.text, /5\/60 steps/);
  assert.deepEqual(
    (await agent.toolCards()).map((c) => `${c.name}:${c.status}`),
    [
      'list_hosts:done',
      'list_vms:done',
      'create_playbook:done',
      'add_playbook_task:done',
      'get_playbook:done',
    ],
  );
  const args = await vms.expand();
  await waitForText(args, /host\s*local/);
  await app.shot('session done', { fullPage: true });

  // ---- Audit → Approvals shows the same readable tool call, decided by the web user.
  await shell.goto('Audit');
  await approvals.open();
  const decided = await approvals.waitForStatus('approved');
  assert.match(decided.decidedBy, /^web:/);
  const detail = await approvals.select(decided.id);
  await detail.getByTestId('approval-tool').waitFor();
  await waitForText(detail.getByTestId('approval-session'), /^Inventory the hosts/);
  await app.shot('approvals list');
  await detail.getByTestId('approval-session').click();
  await agent.view.waitFor();
  assert.equal(await agent.view.getAttribute('data-session'), sessionId);

  // ---- Shift+Tab in the composer: read-only. The next request offers read-only tools only.
  await agent.toggleModeWithKeyboard();
  await agent.waitMode('read-only');
  assert.equal(
    await page
      .getByRole('radiogroup', { name: 'Mode' })
      .getByRole('radio', { name: 'Read-only' })
      .isChecked(),
    true,
  );
  await app.shot('read-only');
  await agent.send('Anything else to check?');
  await agent.waitForReply(/^In read-only mode I can only look/);
  await agent.waitStatus('done');
  const byStep = (id: string) => model.requests.filter((r) => r.step?.endsWith(`"${id}"`));
  const editTools = offeredTools(byStep('hosts')[0]?.body);
  assert.ok(editTools.includes('create_playbook') && editTools.includes('run_command'), editTools.join());
  const roTools = offeredTools(byStep('read-only')[0]?.body);
  assert.ok(roTools.includes('list_hosts'), roTools.join());
  const notReadOnly = roTools.filter((n) => !READ_ONLY_TOOLS.has(n));
  assert.deepEqual(notReadOnly, [], `read-only request offered ${notReadOnly.join(', ')}`);

  // ---- A long reply: scrolling up stops the auto-scroll; Stop ends it.
  await agent.send('Write a long report about everything.');
  await agent.waitStatus('running');
  await waitForText(agent.partial, /Section 3:/, 20_000);
  assert.equal(await agent.following(), true);
  await agent.transcript.evaluate((el) => el.scrollTo({ top: 0 }));
  await waitFor('the transcript to stop following', async () => !(await agent.following()));
  await waitForText(agent.partial, /Section 8:/, 20_000);
  assert.equal(await agent.transcript.evaluate((el) => el.scrollTop), 0, 'it stays where the reader is');
  await page.getByRole('button', { name: 'Jump to latest' }).click();
  await waitFor('the transcript to follow again', () => agent.following());
  // A message sent while it works waits for the agent's next step.
  await agent.send('Keep it short, please.');
  await waitForText(agent.transcript.locator('[data-queued="true"]'), /queued.*Keep it short, please\./);
  await app.shot('long reply streaming');
  await agent.stop();
  await agent.waitStatus('stopped');
  assert.match(await agent.lastError(), /Stopped by web:/);
  // What had streamed is kept as the reply.
  await agent.waitForReply(/^Section 1: everything about the hosts/);
  const long = byStep('long')[0];
  await waitFor('the model request to be cancelled', async () => long?.outcome === 'client_closed');
  // Stopping took the queued message in: it is part of the transcript now, for the next run.
  await waitFor(
    'the queued message to be taken in',
    async () => (await agent.transcript.locator('[data-queued="true"]').count()) === 0,
  );
  assert.equal((await agent.userMessages()).at(-1), 'Keep it short, please.');
  await app.shot('stopped');
  await page.emulateMedia({ colorScheme: 'dark' });
  await waitFor('the dark theme', async () => (await shell.theme()) === 'dark');
  await app.shot('stopped, dark');
  assert.deepEqual(model.mismatches, []);
  app.assertClean();
});

test('providers and agent settings: presets, a failing test, a write-only key, delete, rule validation', async (t) => {
  const model = await startModelServer(t, {
    name: 'models-only',
    models: ['scripted-model', 'scripted-large'],
  });
  const app = await openApp(t, { name: 'agent-settings' });
  const { page, shell } = app;

  // No provider yet: the New session form says where to add one.
  await shell.goto('Agent');
  const agent = new AgentPage(page);
  await agent.emptyState.waitFor();
  await agent.openNew();
  const missing = agent.form.locator('.callout-warn');
  await waitForText(missing, /No model provider yet/);
  assert.equal(await agent.form.getByRole('button', { name: 'Start session' }).isDisabled(), true);
  await app.shot('no provider');
  await missing.getByRole('link', { name: /Add a provider/ }).click();
  await waitFor('Settings', async () => (await shell.currentSection()) === 'Settings');
  const providers = new ProvidersPage(page);
  await page.getByRole('heading', { name: 'No providers yet' }).waitFor();

  // Ollama's preset is an OpenAI-compatible server; nothing listens on this port, and Test says so.
  await providers.add({
    preset: 'Ollama',
    label: 'Local Ollama',
    baseUrl: 'http://127.0.0.1:9/v1',
    model: 'qwen3',
  });
  assert.deepEqual(await providers.badges('Local Ollama'), ['OpenAI-compatible', 'default', 'no key']);
  const failed = await providers.test('Local Ollama', 60_000);
  assert.equal(failed.ok, false, failed.text);
  assert.match(failed.text, /127\.0\.0\.1:9/);
  await app.shot('test failed');

  // The scripted server through its OpenAI door, with a key.
  await providers.add({
    kind: 'openai',
    label: 'Scripted OpenAI',
    baseUrl: model.openaiBaseUrl,
    model: 'scripted-model',
    apiKey: 'sk-e2e-secret-value',
  });
  await providers.waitForBadge('Scripted OpenAI', /key stored/);
  const ok = await providers.test('Scripted OpenAI');
  assert.ok(ok.ok, ok.text);
  assert.deepEqual(ok.models.sort(), ['scripted-large', 'scripted-model']);
  const listed = model.requests.filter((r) => r.path === '/v1/models');
  assert.equal(listed.at(-1)?.auth, 'bearer');

  // The key is write-only: the form never shows it, and leaving the field empty keeps it.
  await providers.item('Scripted OpenAI').getByRole('button', { name: 'Edit' }).click();
  await providers.dialog.waitFor();
  assert.equal(await providers.dialog.getByLabel('API key', { exact: true }).inputValue(), '');
  await waitForText(providers.dialog, /A key is stored \(it is never shown\)/);
  await app.shot('edit provider');
  await providers.fill({ model: 'scripted-large', isDefault: true });
  await providers.dialog.locator('.modal-foot').getByRole('button', { name: 'Save' }).click();
  await providers.dialog.waitFor({ state: 'detached' });
  await providers.waitForBadge('Scripted OpenAI', /^default$/);
  assert.ok((await providers.badges('Scripted OpenAI')).includes('key stored'));
  assert.ok(!(await providers.badges('Local Ollama')).includes('default'));
  await waitForText(providers.item('Scripted OpenAI').locator('.provider-facts'), /scripted-large/);
  assert.ok(!(await page.content()).includes('sk-e2e-secret-value'), 'the key never reaches the page');

  // Delete, confirmed.
  await providers.remove('Local Ollama');
  await app.shot('providers');

  // Settings → Agent: a bad pattern is caught next to its rule; the backend checks the limits.
  const settings = new AgentSettingsPage(page);
  await settings.open();
  await settings.addRule({ tool: 'run_command', args: { command: '(unclosed' }, decision: 'deny' });
  await settings.save();
  assert.match(await settings.ruleError(1), /not a valid regular expression/);
  await app.shot('rule error');
  await page.getByLabel('Rule 1: argument patterns').fill('command=^rm -rf /');
  await settings.setNumber('agent.maxSteps', '0');
  await settings.save();
  await waitForText(settings.field('agent.maxSteps').locator('.field-error'), /at least 1/);
  await settings.setNumber('agent.maxSteps', '25');
  await settings.save();
  // a new rule may loosen the rules: the person confirms it is them
  await new PresenceDialog(page).confirm();
  await settings.waitSaved();
  await waitForText(page.locator('.rules-table tr[data-rule="1"]'), /./);
  assert.equal(await page.getByLabel('Rule 1: decision').inputValue(), 'deny');

  // The New session form: the default provider, its model as the hint, the limits from Settings → Agent.
  await shell.goto('Agent');
  await agent.openNew();
  const provider = agent.form.getByLabel('Provider', { exact: true });
  assert.equal(await provider.locator('option:checked').textContent(), 'Scripted OpenAI (default)');
  assert.equal(
    await agent.form.getByLabel('Model', { exact: true }).getAttribute('placeholder'),
    'scripted-large',
  );
  assert.equal(await agent.form.getByLabel('Max steps').inputValue(), '25');
  await agent.form
    .getByRole('radiogroup', { name: 'Mode' })
    .getByRole('radio', { name: 'Read-only' })
    .check();
  await app.shot('new session form');
  app.assertClean();
});

test('a stream that fails mid-reply is retried from the start, and older turns are compacted', async (t) => {
  const model = await startModelServer(t, {
    name: 'e2e-compaction',
    steps: [
      {
        id: 'broken',
        match: { turn: 'user' },
        text: 'This first attempt is cut off and thrown away.',
        chunkSize: 4,
        chunkDelayMs: 40,
        streamError: { afterChunks: 6, type: 'overloaded_error' },
      },
      {
        id: 'hosts',
        match: { turn: 'user' },
        text: 'Looking at the hosts.',
        toolCalls: [{ name: 'list_hosts', input: {} }],
        usage: usage(300, 20),
      },
      {
        id: 'playbooks',
        match: { toolResult: { tool: 'list_hosts' } },
        toolCalls: [{ name: 'list_playbooks', input: {} }],
        usage: usage(400, 20),
      },
      {
        id: 'done',
        match: { toolResult: { tool: 'list_playbooks' } },
        text: 'Nothing to do: no playbooks yet.',
        usage: usage(350, 10),
      },
    ],
    // Asked whenever the context is over the threshold: the summary of the older turns.
    fallbacks: [
      {
        id: 'summary',
        match: { system: 'summarise the working history' },
        text: '## Task\nList the hosts and the playbooks.\n## Done so far\nListed the hosts: only local.',
        usage: usage(200, 30),
      },
    ],
  });
  const app = await openApp(t, { name: 'agent-compaction' });
  const { page, shell } = app;

  // A tiny context window, compacted at 20 %: every turn with enough history compacts.
  await shell.goto('Settings');
  const providers = new ProvidersPage(page);
  await providers.open();
  await providers.add({
    preset: 'Anthropic',
    label: 'Tiny',
    baseUrl: model.url,
    model: 'scripted-model',
    apiKey: 'k',
    contextTokens: 1000,
    // A model Fluid has no price for: a session starts only with one (free, like a local model).
    inputPerMTok: 0,
    outputPerMTok: 0,
    confirmPrice: true,
  });
  const settings = new AgentSettingsPage(page);
  await settings.open();
  await settings.setNumber('agent.compactAt', '0.2');
  await settings.save();
  await settings.waitSaved();

  await shell.goto('Agent');
  const agent = new AgentPage(page);
  await agent.start({ task: 'List the hosts and the playbooks.', mode: 'Read-only' });
  assert.equal(await agent.mode(), 'read-only');

  // The broken attempt: its text is discarded and the retry says why.
  await waitForText(agent.retryNotices, /Overloaded \(stream\), retrying in [\d.]+ m?s/, 20_000);
  await agent.waitForReply(/^Nothing to do: no playbooks yet\.$/, 30_000);
  await agent.waitStatus('done');
  const replies = await agent.replies();
  assert.ok(!replies.some((r) => r.includes('thrown away')), replies.join(' | '));
  assert.deepEqual(replies, ['Looking at the hosts.', 'Nothing to do: no playbooks yet.']);

  // The compaction: a notice after the compacted turns, with the summary; they stay visible.
  const notice = agent.transcript.getByTestId('compaction-notice');
  await waitForText(notice, /Earlier turns were compacted/);
  await notice.locator('summary').click();
  await waitForText(notice, /Listed the hosts: only local/);
  assert.equal(
    await agent.transcript.locator('.msg[data-compacted="true"]').first().getAttribute('data-role'),
    'user',
  );
  const summaries = model.requests.filter((r) => r.step === 'fallback "summary"');
  assert.equal(summaries.length, 1);
  const meter = await agent.meter();
  assert.equal(meter.steps, 3);
  assert.equal(meter.contextTokens, 350);
  await app.shot('compacted', { fullPage: true });
  assert.deepEqual(model.mismatches, []);
  app.assertClean();
});
