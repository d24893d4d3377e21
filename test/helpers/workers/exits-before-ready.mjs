// A shard worker stand-in that exits without an error before it says it is ready.
process.exit(3);
