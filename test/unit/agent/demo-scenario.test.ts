/**
 * The shipped demo scenario (examples/fix-nginx.yaml) walked without the lab, beside the real run in
 * test/integration/demo-lab.test.ts: the agent's real system prompt for a session about
 * fluid-lab-prod, the real provider client, and tool results shaped like the real tools' (the lab run
 * is what proves they are). It catches a scenario that no longer parses or whose steps no longer
 * follow each other, in a second instead of a lab run; and a result that does not show the fault
 * (production answering 200) must stop the script instead of "fixing" it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import type { Message, ToolDefinition } from '../../../src/core/agent/providers/types.ts';
import { systemPrompt } from '../../../src/core/agent/loop.ts';
import {
  startScriptedModelServer,
  type ScriptedModelServer,
} from '../../../src/core/agent/scripted/server.ts';
import { providerFor, request, run, user } from './helpers.ts';

const SCENARIO = fileURLToPath(
  new URL('../../../src/core/agent/scripted/examples/fix-nginx.yaml', import.meta.url),
);
const TASK = 'nginx on prod-web returns 502: find out why and fix it in a sandbox';
const SBX = '3f1c2a9e-5b7d-4c1e-9a2b-0d4e6f8a1b2c';

const tool = (name: string): ToolDefinition => ({
  name,
  description: name,
  inputSchema: { type: 'object', properties: {} },
});
const TOOLS = [
  'run_source_command',
  'create_sandbox',
  'run_command',
  'edit_file',
  'generate_playbook',
  'update_playbook_task',
  'add_playbook_task',
  'verify_playbook',
  'list_targets',
  'request_apply',
].map(tool);

/** Results in the shape of the real tools' (exit code + streams, JSON briefs, reports). */
function fakeTools(prodCode: string): Record<string, (i: Record<string, unknown>) => string> {
  return {
    run_source_command: (i) =>
      String(i.command).startsWith('systemctl status')
        ? `exit code: 0\nstdout:\n● nginx.service - A high performance web server and a reverse proxy server\n     Active: active (running)\n● shop.service - shop: the demo web app behind nginx\n     Active: active (running)\n     CGroup: /system.slice/shop.service\n             └─412 /usr/bin/python3 /opt/shop/shop.py --host 127.0.0.1 --port 8000\nGET http://127.0.0.1/ -> ${prodCode}\n`
        : `exit code: 0\nstdout:\nupstream shop_app {\n    server 127.0.0.1:8001;\n}\nState  Recv-Q Send-Q Local Address:Port Peer Address:Port\nLISTEN 0      5          127.0.0.1:8000      0.0.0.0:*\n`,
    create_sandbox: () =>
      JSON.stringify({ sandbox_id: SBX, name: 'fluid-lab-prod-1', state: 'running' }, null, 2),
    run_command: (i) =>
      String(i.command).includes('systemctl reload nginx')
        ? 'exit code: 0\nstdout:\nGET http://127.0.0.1/ -> 200\nServed by the shop app on prod-web.\n'
        : 'exit code: 0\nstdout:\nactive\nactive\nGET http://127.0.0.1/ -> 502\n',
    edit_file: (i) => `Edited ${String(i.path)}: 1 replacement.`,
    generate_playbook: () =>
      `Playbook ${SBX.slice(0, 8)}-fix revision 1 (sha256 0123456789abcdef…): 1 changes covered, 0 excluded by a person, 0 not expressed.\n\n- name: Changes of fluid-lab-prod-1\n  hosts: all\n  become: true\n  tasks:\n    - name: Configure /etc/nginx/sites-available/shop\n      ansible.builtin.copy:\n        dest: /etc/nginx/sites-available/shop\n`,
    update_playbook_task: () => 'Updated task 1 (revision 2).',
    add_playbook_task: () => 'Added handler 1 (revision 3).',
    verify_playbook: () => 'Verification of revision 3: passed.\nPASSED   Syntax: ok',
    list_targets: () =>
      JSON.stringify(
        [
          {
            name: 'prod-web',
            address: 'fluid-ops@192.168.122.12:22',
            production_copy_of: 'fluid-lab-prod on lab',
          },
        ],
        null,
        2,
      ),
    request_apply: () =>
      `Change chg_7 is sealed (bundle ${'ab'.repeat(32)}) and waits for a person's approval.\n{}`,
  };
}

let server: ScriptedModelServer;
before(async () => {
  server = await startScriptedModelServer();
});
after(async () => {
  await server.close();
});

/** Drives the scenario like the agent loop: each tool call answered by the fake tools. */
async function drive(prodCode: string): Promise<{ history: Message[]; calls: string[] }> {
  server.load(SCENARIO);
  const provider = providerFor(server, 'anthropic', {});
  const tools = fakeTools(prodCode);
  const system = systemPrompt({ mode: 'edit', host: 'lab', source: 'fluid-lab-prod' }, new Date());
  const history: Message[] = [user(TASK)];
  const calls: string[] = [];
  for (let turn = 0; turn < 20; turn++) {
    const r = await run(provider, request(history, { tools: TOOLS, system }));
    history.push(r.done.message);
    if (r.done.stopReason !== 'tool_use') break;
    calls.push(...r.toolUses.map((u) => u.name));
    history.push({
      role: 'user',
      content: r.toolUses.map((u) => ({
        type: 'tool_result',
        toolUseId: u.id,
        content: tools[u.name]!(u.input),
      })),
    });
  }
  return { history, calls };
}

describe('examples/fix-nginx.yaml', () => {
  test('diagnose read-only, clone, reproduce, fix, confirm, playbook, verify, submit, report', async () => {
    const { history, calls } = await drive('502');
    assert.deepEqual(server.mismatches, []);
    assert.deepEqual(calls, [
      'run_source_command',
      'run_source_command',
      'create_sandbox',
      'run_command',
      'edit_file',
      'run_command',
      'generate_playbook',
      'update_playbook_task',
      'add_playbook_task',
      'verify_playbook',
      'list_targets',
      'request_apply',
    ]);
    assert.equal(server.state().remaining, 0);
    assert.deepEqual(
      { ...server.vars },
      {
        vm: 'fluid-lab-prod',
        port: '8000',
        badport: '8001',
        sbx: SBX,
        playbook: `${SBX.slice(0, 8)}-fix`,
        task: 'Configure /etc/nginx/sites-available/shop',
        target: 'prod-web',
        change: 'chg_7',
      },
    );
    // the fix is the upstream line, from the wrong port to the app's
    const edit = server.requests
      .flatMap((r) => JSON.stringify(r.body))
      .find((b) => b.includes('"old_str":"server 127.0.0.1:8001;"'));
    assert.ok(edit?.includes('"new_str":"server 127.0.0.1:8000;"'));
    const last = history.at(-1)!.content[0]!;
    assert.ok(last.type === 'text');
    assert.match(last.text, /waits for a person's approval; nothing was applied to production/);
  });

  test('production without the fault (200): the script stops at once, nothing is cloned', async () => {
    await assert.rejects(drive('200'));
    assert.equal(server.mismatches.length, 1);
    assert.match(server.mismatches[0]!.message, /read-site/);
  });
});
