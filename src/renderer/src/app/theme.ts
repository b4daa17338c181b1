/** Light and dark themes follow settings.ui.theme; "system" follows prefers-color-scheme. */
import { useEffect } from 'react';
import { useSettings } from '../stores/settings.ts';

export function useThemeSync(): void {
  const pref = useSettings((s) => s.settings?.ui.theme ?? 'system');
  useEffect(() => {
    const root = document.documentElement;
    const mq = window.matchMedia('(prefers-color-scheme: dark)');
    const apply = () => {
      const resolved = pref === 'system' ? (mq.matches ? 'dark' : 'light') : pref;
      root.dataset.theme = resolved;
      root.dataset.themePreference = pref;
      root.style.colorScheme = resolved;
    };
    apply();
    if (pref !== 'system') return;
    mq.addEventListener('change', apply);
    return () => mq.removeEventListener('change', apply);
  }, [pref]);
}
