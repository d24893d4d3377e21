/** Runs a load tool (wrk, redis-benchmark) to its end and gives back what it printed. */
import { spawn } from 'node:child_process';

export interface ToolRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export async function runTool(command: string, args: readonly string[]): Promise<ToolRun> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  return { code, stdout, stderr };
}

/** The last lines of what a tool printed, for an error message. */
export function toolTail({ stdout, stderr }: ToolRun): string {
  return (stderr || stdout).trim().split('\n').slice(-3).join(' | ');
}
