// HTTP/1.1 message framing, strictly (RFC 9112 section 6): where a request's body ends must be
// beyond doubt, or a proxy in front that reads it otherwise sees a different next request (request
// smuggling). uWS takes the first Content-Length of several, and any Transfer-Encoding that ends in
// "chunked" as chunked; both are refused here before a byte of the body is read.

import { TopTallyError } from '../errors.ts';
import type { HttpRequest } from './uws.ts';

/** null, or the 400 for a request whose framing is ambiguous. */
export function checkFraming(req: HttpRequest): TopTallyError | null {
  let lengths = 0;
  let encodings = 0;
  let length = '';
  let encoding = '';
  req.forEach((name, value) => {
    if (name === 'content-length') {
      lengths++;
      length = value;
    } else if (name === 'transfer-encoding') {
      encodings++;
      encoding = value;
    }
  });
  if (lengths === 0 && encodings === 0) return null;
  if (lengths > 1) return badFraming('more than one Content-Length header');
  if (lengths === 1 && !/^[0-9]{1,15}$/.test(length)) return badFraming(`Content-Length ${JSON.stringify(length.slice(0, 40))} is not a number of bytes`);
  if (encodings > 1) return badFraming('more than one Transfer-Encoding header');
  if (encodings === 1 && encoding.trim().toLowerCase() !== 'chunked') {
    return badFraming(`Transfer-Encoding ${JSON.stringify(encoding.slice(0, 40))} is not supported: only "chunked"`);
  }
  if (lengths === 1 && encodings === 1) return badFraming('both Content-Length and Transfer-Encoding');
  return null;
}

function badFraming(what: string): TopTallyError {
  return new TopTallyError('TOPTALLY_ERR_BAD_FRAMING', `The request's framing is ambiguous: ${what} (RFC 9112)`);
}
