/**
 * The demo a person starts from the Agent view, with nothing to edit: the shipped scenario
 * (scripted/examples/fix-nginx.yaml) plays the model. Production's web service answers 502; the agent
 * finds why read-only on the source VM, fixes it in a sandbox cloned from it, turns the diff into a
 * verified playbook and submits the change, which then waits for a person.
 *
 * The scenario needs the lab's production VM (`fluid-lab-prod`, see the README's lab section)
 * registered as an apply target. The scripted model server runs inside this process on 127.0.0.1,
 * without its admin routes (nothing else on the machine can change its script); the demo's sessions
 * use the provider `demo` pointed at it, which the person saves (its price of $0 is theirs to confirm,
 * like any price). One demo session runs at a time; a new one starts the scenario from its first step.
 */
import { fileURLToPath } from 'node:url';
import type { Demo, Session } from '../../shared/contract/agent.ts';
import { FluidError } from '../../shared/errors.ts';
import { isPersonDoor, type Actor } from '../../shared/rpc.ts';
import type { TargetService } from '../targets/service.ts';
import type { AgentService } from './service.ts';
import { startScriptedModelServer, type ScriptedModelServer } from './scripted/server.ts';

export const DEMO_SCENARIO_URL = new URL('./scripted/examples/fix-nginx.yaml', import.meta.url);

const SOURCE = 'fluid-lab-prod';
/** A session in these has not ended its turn: the scenario is still being played for it. */
const ACTIVE: ReadonlyArray<Session['status']> = ['running', 'waiting-approval'];

export class DemoService {
  readonly #targets: TargetService;
  readonly #agent: AgentService;
  #server: Promise<ScriptedModelServer> | null = null;
  #closed = false;

  constructor(d: { targets: TargetService; agent: AgentService }) {
    this.#targets = d.targets;
    this.#agent = d.agent;
  }

  /** What the demo needs and, when this installation has it, its scripted model, ready for a new session. */
  async prepare(actor: Actor): Promise<Demo> {
    if (!isPersonDoor(actor))
      throw new FluidError(
        'DENIED',
        `The demo is started by a person (the app, the web UI or a terminal); the ${actor.door} door cannot.`,
      );
    if (this.#closed) throw new FluidError('UNAVAILABLE', 'Fluid is shutting down.');
    const target = this.#targets.list().find((t) => t.sourceVm?.vm === SOURCE) ?? null;
    const demo: Demo = {
      name: 'fix-nginx',
      title: 'nginx answers 502 on production',
      description:
        "The lab's production VM serves a shop behind nginx, and its page answers 502. A scripted model plays the agent: it finds the cause read-only on production, fixes it in a sandbox cloned from it, verifies a playbook made from the sandbox's diff and submits the change for your review. Nothing reaches production unless you approve it.",
      task: `nginx on ${target?.name ?? 'prod-web'} returns 502: find out why and fix it in a sandbox`,
      source: SOURCE,
      host: target?.sourceVm?.hostName ?? null,
      target: target?.name ?? null,
      missing: target
        ? null
        : `Register the lab's production VM as a target first: bring the lab up (sudo bash scripts/lab/lab.sh up), add its host (fluid host add root@127.0.0.1:2222 --name lab --key /var/tmp/fluid-lab/ssh/id_ed25519) and its target (fluid target add prod-web fluid-ops@192.168.122.12 --key /var/tmp/fluid-lab/ssh/prod_target_ed25519 --jump lab --source lab/${SOURCE}), as the README's lab section shows.`,
      providerId: 'demo',
      model: 'scripted-model',
      baseUrl: null,
      running: null,
    };
    if (!target) return demo;
    const server = await (this.#server ??= startScriptedModelServer({
      scenario: fileURLToPath(DEMO_SCENARIO_URL),
      admin: false,
    }).catch((err: unknown) => {
      this.#server = null;
      throw err;
    }));
    const running = this.#agent
      .list(500)
      .find((s) => s.providerId === demo.providerId && ACTIVE.includes(s.status));
    // A new session starts the scenario from its first step; a running one keeps its place.
    if (!running) server.reset();
    return { ...demo, baseUrl: server.anthropicBaseUrl, running: running?.id ?? null };
  }

  async close(): Promise<void> {
    this.#closed = true;
    const server = await this.#server?.catch(() => null);
    await server?.close();
  }
}
