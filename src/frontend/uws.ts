// uWebSockets.js, native when the build matches this Node.js, otherwise its pure-Node fallback.

import uWS from '@trufflesuite/uws-js-unofficial';

export { uWS };
export type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket, WebSocket } from '@trufflesuite/uws-js-unofficial';

/** Which implementation loaded: the fallback has no native `getParts`. */
export const uwsImplementation: 'native' | 'fallback' = typeof uWS.getParts === 'function' ? 'native' : 'fallback';

/**
 * The package ships native builds for Node.js 16, 18 and 20 only (ABIs 93, 108, 115); on any other
 * Node.js it loads its JavaScript fallback, which is slower and mishandles some requests (query
 * strings among them), so the start line says so.
 */
export const uwsWarning: string | null =
  uwsImplementation === 'native'
    ? null
    : `uWebSockets.js runs its JavaScript fallback (no native build for Node.js ${process.versions.node}; ` +
      'native builds exist for Node.js 20, which toptally needs): slower, and not supported';
