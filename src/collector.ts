// V8 settings for the service's process, made before it starts serving.
//
// V8 "pretenures" an allocation site once most of what it allocated survived a young-generation
// collection: later objects from that site are born in the old generation. Under request load, a
// site such as a request's exchange or its body read can be judged that way from a burst, and then
// stays so. Every request's object is then born old, and whatever it points to when it dies (its
// closures, promises, body, parts) survives the next scavenge, because the scavenger takes every
// old object as live, and is promoted at the one after: each request's short-lived objects are
// copied twice and left for a full collection. Without pretenuring they die young, as they should.

import v8 from 'node:v8';

/** Call once, first thing, in a process that runs the service (it applies to its workers too). */
export function tuneCollector(): void {
  v8.setFlagsFromString('--no-allocation-site-pretenuring');
}
