/**
 * The contract members of the agent: providers, sessions, and the session event stream. (tools.list
 * and policy.check are served by the router from the tool registry and the shell policy.)
 */
import type { Contract } from '../../shared/contract/index.ts';
import type { Router } from '../rpc/server.ts';
import type { AgentService } from './service.ts';

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
  | 'agent.watch';

export function agentRoutes(core: { agent: AgentService }): Pick<Router<Contract>, AgentRouteName> {
  const agent = core.agent;
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
  };
}
