/** Web mode's socket conventions, shared by the server and every WebSocket client. */
import { contract, type Contract } from './contract/index.ts';
import { FluidError } from './errors.ts';
import { portFromWebSocket, RpcClient, type WebSocketLike } from './rpc.ts';

export const RPC_PATH = '/rpc';
export const RPC_PROTOCOL = 'fluid.rpc.v1';
export const TOKEN_PROTOCOL_PREFIX = 'fluid.token.';

export type WebSocketCtor = new (
  url: string,
  protocols: string[],
) => WebSocketLike & {
  addEventListener(type: 'open' | 'error', listener: () => void): void;
};

/** Connect to a Fluid web server (origin like http://127.0.0.1:4000) with its token. */
export function connectWebSocket(
  WS: WebSocketCtor,
  origin: string,
  token: string,
): Promise<RpcClient<Contract>> {
  const url = origin.replace(/^http/, 'ws') + RPC_PATH;
  return new Promise((resolve, reject) => {
    const ws = new WS(url, [RPC_PROTOCOL, TOKEN_PROTOCOL_PREFIX + token]);
    let opened = false;
    ws.addEventListener('open', () => {
      opened = true;
      resolve(new RpcClient(contract, portFromWebSocket(ws)));
    });
    ws.addEventListener('error', () => {
      if (!opened)
        reject(
          new FluidError(
            'UNAVAILABLE',
            `Could not connect to ${url}: the server refused the connection or the token is wrong.`,
          ),
        );
    });
  });
}
