/**
 * The renderer's only way to the backend: the contract client over whichever door it was loaded by.
 * Inside Electron the preload posts a MessagePort; in web mode the page connects a WebSocket with the
 * token from the URL fragment (then removes it from the address bar).
 */
import { contract, type Contract } from '../../shared/contract/index.ts';
import { portFromMessagePort, RpcClient } from '../../shared/rpc.ts';
import { connectWebSocket } from '../../shared/web.ts';

export type Backend = RpcClient<Contract>;
export type Door = 'app' | 'web';

const TOKEN_KEY = 'fluid.token';

function waitForElectronPort(timeoutMs: number): Promise<MessagePort | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      window.removeEventListener('message', onMessage);
      resolve(null);
    }, timeoutMs);
    function onMessage(e: MessageEvent) {
      if (e.source !== window || e.data !== 'fluid:port' || !e.ports[0]) return;
      clearTimeout(timer);
      window.removeEventListener('message', onMessage);
      resolve(e.ports[0]);
    }
    window.addEventListener('message', onMessage);
  });
}

export async function connectBackend(): Promise<{ backend: Backend; door: Door }> {
  if (location.protocol === 'file:') {
    const port = await waitForElectronPort(10_000);
    if (!port) throw new Error('The app shell did not hand over a connection to the backend.');
    return { backend: new RpcClient(contract, portFromMessagePort(port)), door: 'app' };
  }
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromHash) {
    sessionStorage.setItem(TOKEN_KEY, fromHash);
    history.replaceState(null, '', location.pathname + location.search);
  }
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token)
    throw new Error('No access token. Open the URL that `fluid serve` printed (it ends with #token=…).');
  return { backend: await connectWebSocket(WebSocket, location.origin, token), door: 'web' };
}
