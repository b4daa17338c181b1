import { memoryPortPair, RpcClient, type Actor } from '../../shared/rpc.ts';
import { contract, type Contract } from '../../shared/contract/index.ts';
import type { Core } from '../createCore.ts';

/** A client wired to the core in the same process (CLI, tests), through the same router and validation. */
export function connectInProcess(core: Core, actor: Actor): RpcClient<Contract> {
  const [clientSide, serverSide] = memoryPortPair();
  core.serve(serverSide, actor);
  return new RpcClient(contract, clientSide);
}
