// The HTTP paths clients and the OpenAPI document rely on, where the front end's handlers are not:
// the seed's stats paths with their aliases, and the dashboard's asset names.

import type { WindowKind } from '../window.ts';

/** The seed's paths, with the aliases its README shows. */
export const SEED_STATS_PATHS: Record<WindowKind, readonly string[]> = {
  minute: ['/api/stats/minutes', '/stats/minutes', '/stats/api/minutes'],
  hour: ['/api/stats/hours', '/stats/hours', '/stats/api/hours'],
};

/** What the dashboard page loads from /dashboard/{name}. */
export const DASHBOARD_ASSET_NAMES = ['app.js', 'style.css', 'favicon.svg', 'uPlot.iife.min.js', 'uPlot.min.css'] as const;
