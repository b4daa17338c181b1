import type { ParseArgsConfig } from 'node:util';
import type { Contract } from '../shared/contract/index.ts';
import type { RpcClient } from '../shared/rpc.ts';
import type { Core } from '../core/createCore.ts';
import type { Io } from './io.ts';

export type Client = RpcClient<Contract>;

export interface Ctx {
  io: Io;
  core: Core;
  client: Client;
  args: string[];
  values: Record<string, string | boolean | string[] | undefined>;
}

export interface Command {
  summary: string;
  usage: string;
  options?: ParseArgsConfig['options'];
  /** Commands that manage their own process and state (serve, policy check): get the raw argv. */
  raw?: (argv: string[], global: { json: boolean; dataDir?: string }) => Promise<number>;
  run?: (ctx: Ctx) => Promise<number | void>;
}
