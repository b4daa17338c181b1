// The preload exposes nothing. It forwards the one MessagePort that main hands over to the page,
// where the renderer's contract client picks it up. Every call then goes through the core router.
import { ipcRenderer } from 'electron';

ipcRenderer.on('fluid:port', (event) => {
  window.postMessage(
    'fluid:port',
    window.location.origin === 'null' ? '*' : window.location.origin,
    event.ports,
  );
});
