/**
 * The contract members of runs, terminals and the serial console (runs.ts, terminals.ts, console.ts).
 * Terminals and the console are a person's: an agent's door (the built-in agent, MCP, an API token,
 * a CLI without a terminal) runs commands through its own tools and never types into a person's
 * shell or the guest's console.
 */
import type { Contract } from '../../shared/contract/index.ts';
import { FluidError } from '../../shared/errors.ts';
import { isPersonDoor, type Actor } from '../../shared/rpc.ts';
import type { Router } from '../rpc/server.ts';
import type { SandboxService } from './service.ts';

export type SandboxSessionRouteName =
  | 'sandboxes.runStart'
  | 'sandboxes.runAttach'
  | 'sandboxes.runs'
  | 'sandboxes.runCancel'
  | 'sandboxes.terminalOpen'
  | 'sandboxes.terminalAttach'
  | 'sandboxes.terminalInput'
  | 'sandboxes.terminalClose'
  | 'sandboxes.terminals'
  | 'sandboxes.console'
  | 'sandboxes.consoleInput';

function personOnly(actor: Actor, what: string): void {
  if (!isPersonDoor(actor))
    throw new FluidError(
      'DENIED',
      `${what} is for a person (the app, the web UI or a terminal); ${actor.door}:${actor.id} runs commands with its own tools.`,
    );
}

export function sandboxSessionRoutes(core: {
  sandboxes: SandboxService;
}): Pick<Router<Contract>, SandboxSessionRouteName> {
  const sb = core.sandboxes;
  return {
    'sandboxes.runStart': (i, ctx) =>
      sb.runStart(
        i.sandbox,
        i.command,
        { timeoutSeconds: i.timeoutSeconds, maxOutputBytes: i.maxOutputBytes },
        ctx.actor,
      ),
    'sandboxes.runAttach': (i, ctx) => sb.runs.attach(i.run, i.offset, ctx.signal),
    'sandboxes.runs': (i) =>
      sb.runs.list({ sandboxId: i.sandbox ? sb.store.row(i.sandbox).id : undefined, limit: i.limit }),
    'sandboxes.runCancel': (i, ctx) => sb.runs.cancel(i.run, ctx.actor),

    'sandboxes.terminalOpen': (i, ctx) => {
      personOnly(ctx.actor, 'A terminal');
      return sb.terminalOpen(i.sandbox, i.cols, i.rows, ctx.actor);
    },
    'sandboxes.terminalAttach': (i, ctx) => {
      personOnly(ctx.actor, 'A terminal');
      return sb.terminals.attach(i.terminal, i.offset, ctx.signal);
    },
    'sandboxes.terminalInput': (i, ctx) => {
      personOnly(ctx.actor, 'A terminal');
      sb.terminals.input(i.terminal, i.data, i.cols, i.rows);
      return { ok: true as const };
    },
    'sandboxes.terminalClose': (i, ctx) => {
      personOnly(ctx.actor, 'A terminal');
      return sb.terminals.close(i.terminal, ctx.actor);
    },
    'sandboxes.terminals': (i, ctx) => {
      personOnly(ctx.actor, 'A terminal');
      return sb.terminals.list(i.sandbox ? sb.store.row(i.sandbox).id : undefined, i.includeEnded);
    },

    'sandboxes.console': async function* (i, ctx) {
      personOnly(ctx.actor, 'The serial console');
      yield* await sb.console(i.sandbox, i.offset, ctx.signal);
    },
    'sandboxes.consoleInput': async (i, ctx) => {
      personOnly(ctx.actor, 'The serial console');
      await sb.consoleInput(i.sandbox, i.data, ctx.actor);
      return { ok: true as const };
    },
  };
}
