/**
 * Serialises async work per tenant: writes to one tenant's corpus run one after another, while other tenants and
 * searches go on. A failed piece of work does not block the next one.
 */
export class TenantLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(tenant: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(tenant) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.catch(() => undefined);
    this.tails.set(tenant, settled);
    void settled.then(() => {
      if (this.tails.get(tenant) === settled) this.tails.delete(tenant);
    });
    return next;
  }

  /** Resolves once all work queued so far has settled. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.tails.values()]);
  }
}
