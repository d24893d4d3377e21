// Whether toptally should get traffic (/readyz): every start-up step has finished and every live
// condition holds. /healthz, by contrast, only says the process answers.

export interface ReadinessReport {
  ready: boolean;
  /** 'ok', or why not: 'pending', a failure's message, or a check's reason. */
  checks: Record<string, string>;
}

export class Readiness {
  readonly #steps = new Map<string, string>();
  readonly #checks = new Map<string, () => string | null>();

  /** Not ready until `step` has resolved; a rejection keeps it not ready, with the reason. */
  after(name: string, step: Promise<unknown>): void {
    this.#steps.set(name, 'pending');
    step.then(
      () => this.#steps.set(name, 'ok'),
      (err: unknown) => this.#steps.set(name, `failed: ${err instanceof Error ? err.message : String(err)}`),
    );
  }

  /** A condition asked at every probe: `reason` returns null when it holds. */
  check(name: string, reason: () => string | null): void {
    this.#checks.set(name, reason);
  }

  report(): ReadinessReport {
    const checks: Record<string, string> = Object.fromEntries(this.#steps);
    for (const [name, reason] of this.#checks) checks[name] = reason() ?? 'ok';
    return { ready: Object.values(checks).every((state) => state === 'ok'), checks };
  }
}
