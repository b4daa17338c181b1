/**
 * The sidebar: expanded, collapsed to icons, or "auto" (collapsed when the window is narrow). What the
 * person chose is kept in this browser (localStorage), never on the backend.
 */
import { create } from 'zustand';

export type NavMode = 'auto' | 'expanded' | 'collapsed';

const KEY = 'fluid.nav';

function stored(): NavMode {
  try {
    const v = localStorage.getItem(KEY);
    return v === 'expanded' || v === 'collapsed' ? v : 'auto';
  } catch {
    return 'auto';
  }
}

/** Below this width "auto" collapses the sidebar (the same width as the stylesheet's media query). */
export const NARROW_QUERY = '(max-width: 1100px)';

export const useLayout = create<{ nav: NavMode }>(() => ({ nav: stored() }));

export function setNavMode(nav: NavMode): void {
  try {
    if (nav === 'auto') localStorage.removeItem(KEY);
    else localStorage.setItem(KEY, nav);
  } catch {
    // storage may be off: the choice lasts for this page
  }
  useLayout.setState({ nav });
}

/** Is the sidebar showing icons only right now? */
export function navCollapsed(nav: NavMode, narrow: boolean): boolean {
  return nav === 'collapsed' || (nav === 'auto' && narrow);
}
