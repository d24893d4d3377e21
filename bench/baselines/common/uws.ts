/** The few uWS chores every baseline repeats: reading a body, replying from a callback, shutting down. */
import uWS from '@trufflesuite/uws-js-unofficial';
import type { HttpResponse, TemplatedApp } from '@trufflesuite/uws-js-unofficial';

/**
 * Collects the request body and hands it to `onBody` once complete. uWS neuters each chunk when the
 * onData callback returns, so every chunk but a lone final one is copied; the Buffer given to
 * `onBody` is only valid until it returns. Must be called synchronously in the route handler.
 */
export function readBody(res: HttpResponse, onBody: (body: Buffer) => void): void {
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  let parts: Buffer[] | undefined;
  res.onData((chunk, isLast) => {
    if (aborted) return;
    const view = Buffer.from(chunk);
    if (!isLast) {
      (parts ??= []).push(Buffer.from(view)); // copy: `view` dies with this callback
      return;
    }
    onBody(parts === undefined ? view : Buffer.concat([...parts, view]));
  });
}

/** Replies outside the route handler's own cork (e.g. from onData), as uWS asks. */
export function reply(res: HttpResponse, status: string, json: string): void {
  res.cork(() => {
    res.writeStatus(status).writeHeader('content-type', 'application/json').end(json);
  });
}

/** Listens on 127.0.0.1:$PORT, prints `ready`, and exits on SIGTERM. */
export function listen(app: TemplatedApp, name: string): void {
  const port = Number(process.env['PORT'] ?? 3000);
  // Any response to GET / tells the bench harness the server is up.
  app.any('/*', (res) => {
    res.writeStatus('404 Not Found').end();
  });
  app.listen('127.0.0.1', port, (socket) => {
    if (socket === false) {
      console.error(`${name}: cannot listen on 127.0.0.1:${port}`);
      process.exit(1);
    }
    console.log(`ready ${name} on 127.0.0.1:${port}`);
    process.once('SIGTERM', () => {
      uWS.us_listen_socket_close(socket);
      process.exit(0);
    });
  });
}
