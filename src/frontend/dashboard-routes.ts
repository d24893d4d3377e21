// The dashboard at /: static files from src/dashboard/ plus uPlot from its own package, read once
// at start-up. No build step, no CDN: everything the page loads comes from this server.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DASHBOARD_ASSET_NAMES } from '../api/routes.ts';
import { packageFile } from '../runtime.ts';
import type { Router } from './router.ts';

const PAGE_DIR = fileURLToPath(packageFile('src/dashboard/'));
const UPLOT_DIR = dirname(createRequire(import.meta.url).resolve('uplot'));

/** Where each asset the page loads from /dashboard/{name} is read from. */
const DASHBOARD_ASSETS: Record<(typeof DASHBOARD_ASSET_NAMES)[number], string> = {
  'app.js': join(PAGE_DIR, 'app.js'),
  'style.css': join(PAGE_DIR, 'style.css'),
  'favicon.svg': join(PAGE_DIR, 'favicon.svg'),
  'uPlot.iife.min.js': join(UPLOT_DIR, 'uPlot.iife.min.js'),
  'uPlot.min.css': join(UPLOT_DIR, 'uPlot.min.css'),
};

const CONTENT_TYPES = new Map([
  ['.html', 'text/html; charset=utf-8'],
  ['.js', 'text/javascript; charset=utf-8'],
  ['.css', 'text/css; charset=utf-8'],
  ['.svg', 'image/svg+xml'],
]);

// The page talks only to this server (fetch and WebSocket); uPlot sets element styles from script.
const PAGE_HEADERS = {
  'Cache-Control': 'no-cache',
  'X-Content-Type-Options': 'nosniff',
  'Content-Security-Policy': "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
};

export function addDashboardRoutes(router: Router): void {
  serve(router, '/', join(PAGE_DIR, 'index.html'));
  for (const name of DASHBOARD_ASSET_NAMES) serve(router, `/dashboard/${name}`, DASHBOARD_ASSETS[name]);
}

function serve(router: Router, path: string, file: string): void {
  const body = readFileSync(file);
  const type = CONTENT_TYPES.get(extname(file));
  if (!type) throw new Error(`no content type for ${file}`);
  router.add('GET', [path], (exchange) => exchange.send(200, type, body, PAGE_HEADERS));
}
