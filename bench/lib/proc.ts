/** Readings from /proc shared by the harness (server CPU) and the generators (their own and children's CPU). */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export const clockTicksPerSecond = (() => {
  const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const ticks = Number(out.stdout?.trim());
  return Number.isFinite(ticks) && ticks > 0 ? ticks : 100;
})();

/** Fields of /proc/<pid>/stat after the `(comm)` field, which may itself contain spaces. */
export function statFields(pid: number | 'self'): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined; // the process is gone
  }
}

// Indices into statFields(): field 4 is ppid, 14 utime, 15 stime, 16 cutime, 17 cstime (man 5 proc),
// and the array starts at field 3.
export const PPID = 4 - 3;
export const UTIME = 14 - 3;
export const STIME = 15 - 3;
const CUTIME = 16 - 3;
const CSTIME = 17 - 3;

/**
 * CPU time of this process (µs-precise, from Node) plus that of the children it has already waited for
 * (in clock ticks, from /proc), so a generator that runs wrk as a child is charged for wrk too.
 */
export function ownCpuMsWithChildren(): number {
  const own = process.cpuUsage();
  const fields = statFields('self');
  const childTicks = fields === undefined ? 0 : Number(fields[CUTIME]) + Number(fields[CSTIME]);
  return (own.user + own.system) / 1000 + (childTicks * 1000) / clockTicksPerSecond;
}

/** Resident and peak resident memory of a process in bytes (/proc/<pid>/status VmRSS, VmHWM). */
export function memoryOf(pid: number): { rssBytes: number; peakRssBytes: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rssBytes: kib('VmRSS') * 1024, peakRssBytes: kib('VmHWM') * 1024 };
}
