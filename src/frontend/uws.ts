// uWebSockets.js, native when the build matches this Node.js, otherwise its pure-Node fallback.

import uWS from '@trufflesuite/uws-js-unofficial';

export { uWS };
export type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket, WebSocket } from '@trufflesuite/uws-js-unofficial';

/** Which implementation loaded: the fallback has no native `getParts`. */
export const uwsImplementation: 'native' | 'fallback' = typeof uWS.getParts === 'function' ? 'native' : 'fallback';
