/**
 * The sidebar: the sections, collapsible to icons (a toggle; collapsed by itself in a narrow window
 * unless the person chose otherwise). Collapsed links keep their names for screen readers and as
 * tooltips.
 */
import { Icon } from '../components/Icon.tsx';
import { useMedia } from '../lib/media.ts';
import { href } from '../lib/route.ts';
import { NARROW_QUERY, navCollapsed, setNavMode, useLayout } from '../stores/layout.ts';
import { useSystem } from '../stores/system.ts';
import { SECTIONS } from './sections.ts';

export function useNavCollapsed(): boolean {
  const nav = useLayout((s) => s.nav);
  const narrow = useMedia(NARROW_QUERY);
  return navCollapsed(nav, narrow);
}

export function Nav({ current }: { current: string }) {
  const version = useSystem((s) => s.info?.version);
  const collapsed = useNavCollapsed();
  return (
    <nav className="nav" aria-label="Sections" data-collapsed={collapsed ? 'true' : 'false'}>
      <div className="brand">
        <span className="brand-mark" aria-hidden="true">
          <svg viewBox="0 0 24 24" width="20" height="20">
            <path
              d="M4 15c3-5 6 3 9-2s4-6 7-4"
              fill="none"
              stroke="currentColor"
              strokeWidth="2.4"
              strokeLinecap="round"
            />
            <path
              d="M4 19.5c3-5 6 3 9-2s4-6 7-4"
              fill="none"
              stroke="currentColor"
              strokeWidth="2.4"
              strokeLinecap="round"
              opacity=".45"
            />
          </svg>
        </span>
        <span className="brand-name">Fluid</span>
      </div>
      <ul className="nav-list">
        {SECTIONS.map((s) => (
          <li key={s.id}>
            <a
              className={current === s.id ? 'nav-link active' : 'nav-link'}
              href={href(s.id)}
              aria-current={current === s.id ? 'page' : undefined}
              title={collapsed ? s.label : undefined}
            >
              <Icon name={s.icon} size={16} />
              <span className="nav-label">{s.label}</span>
            </a>
          </li>
        ))}
      </ul>
      <div className="nav-foot">
        <button
          type="button"
          className="btn btn-icon btn-ghost nav-toggle"
          aria-expanded={!collapsed}
          aria-label={collapsed ? 'Expand the sidebar' : 'Collapse the sidebar'}
          title={collapsed ? 'Expand the sidebar' : 'Collapse the sidebar'}
          onClick={() => setNavMode(collapsed ? 'expanded' : 'collapsed')}
        >
          <Icon name="sidebar" size={16} />
        </button>
        <span className="nav-version">{version ? `v${version}` : ''}</span>
      </div>
    </nav>
  );
}
