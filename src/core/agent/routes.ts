/**
 * The contract members of the agent: providers, sessions, and the session event stream. (tools.list
 * and policy.check are served by the router from the tool registry and the shell policy.)
 */
import type { Contract } from '../../shared/contract/index.ts';
import type { Router } from '../rpc/server.ts';
import type { AgentService } from './service.ts';
import type { Db } from '../store/db.ts';
import type { SandboxService } from '../sandboxes/service.ts';
import { destroySessionSandboxes, sessionLinks } from './links.ts';
import type { DemoService } from './demo.ts';

export type AgentRouteName =
  | 'providers.list'
  | 'providers.save'
  | 'providers.delete'
  | 'providers.test'
  | 'agent.sessions.list'
  | 'agent.sessions.get'
  | 'agent.sessions.create'
  | 'agent.send'
  | 'agent.stop'
  | 'agent.setMode'
  | 'agent.transcript'
  | 'agent.toolOutput'
  | 'agent.watch'
  | 'agent.demo'
  | 'agent.sessions.links'
  | 'agent.sessions.destroySandboxes';

export function agentRoutes(core: {
  agent: AgentService;
  /** For a session's links to its sandboxes (absent in harnesses that serve sessions alone). */
  db?: Db;
  sandboxes?: SandboxService;
  /** The shipped demo (absent in harnesses that serve sessions alone). */
  demo?: DemoService;
}): Pick<Router<Contract>, AgentRouteName> {
  const agent = core.agent;
  const links = () => {
    if (!core.db || !core.sandboxes) throw new Error('agentRoutes: sandboxes are not wired here');
    return { db: core.db, agent, sandboxes: core.sandboxes };
  };
  return {
    'providers.list': () => agent.listProviders(),
    'providers.save': (i, ctx) => agent.saveProvider(i, ctx.actor),
    'providers.delete': (i, ctx) => agent.deleteProvider(i.id, ctx.actor),
    'providers.test': (i, ctx) => agent.testProvider(i.id, ctx.signal),
    'agent.sessions.list': (i) => agent.list(i.limit),
    'agent.sessions.get': (i) => agent.get(i.sessionId),
    'agent.sessions.create': (i, ctx) => agent.create(i, ctx.actor),
    'agent.send': (i, ctx) => agent.send(i.sessionId, i.text, ctx.actor),
    'agent.stop': (i, ctx) => agent.stop(i.sessionId, ctx.actor),
    'agent.setMode': (i, ctx) => agent.setMode(i.sessionId, i.mode, ctx.actor),
    'agent.transcript': (i) => agent.transcript(i.sessionId),
    'agent.toolOutput': (i) => agent.toolOutput(i.sessionId, i.handle, i.offset, i.limit),
    'agent.watch': (i, ctx) => agent.watch(i.sessionId, ctx.signal),
    'agent.demo': (_i, ctx) => {
      if (!core.demo) throw new Error('agentRoutes: the demo is not wired here');
      return core.demo.prepare(ctx.actor);
    },
    'agent.sessions.links': (i) => sessionLinks(links(), i.sessionId, i.auditLimit),
    'agent.sessions.destroySandboxes': (i, ctx) =>
      destroySessionSandboxes(links(), i.sessionId, i.keep, ctx.actor),
  };
}
