/** Settings: snapshot with settings.get, then settings.changed replaces them. */
import { create } from 'zustand';
import type { Settings } from '../../../shared/contract/settings.ts';
import type { Backend } from '../backend.ts';
import { toastError } from './toasts.ts';

interface SettingsStore {
  settings: Settings | null;
}

export const useSettings = create<SettingsStore>(() => ({ settings: null }));

export function attachSettings(backend: Backend): () => void {
  let alive = true;
  let sawEvent = false;
  const off = backend.on('settings.changed', (settings) => {
    sawEvent = true;
    useSettings.setState({ settings });
  });
  backend.call('settings.get', {}).then(
    (settings) => alive && !sawEvent && useSettings.setState({ settings }),
    (err: unknown) => alive && toastError(err, 'Loading settings'),
  );
  return () => {
    alive = false;
    off();
  };
}
