// Piscina's entry for the decode pool. Piscina loads its entry with require() before it tries
// import(), and Node 20 then loads an ES module synchronously: a pool thread ended while that load
// is under way (a server stopped just after it started) aborts the whole process ("IsGraphAsync
// must be used on an instantiated module"). This file is CommonJS, so require() loads no ES module,
// and the decoder (the build's module, or the .mjs that registers tsx first) is loaded by import(),
// which a thread that is ended abandons cleanly.
'use strict';
const { workerData } = require('node:worker_threads');

const decoder = import(workerData.entry);
decoder.catch(() => {}); // a load that fails is reported by every task instead

module.exports = async (task) => (await decoder).default(task);
