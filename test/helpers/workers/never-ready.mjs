// A shard worker stand-in that stays alive and never says it is ready.
setInterval(() => {}, 60_000);
