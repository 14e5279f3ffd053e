/**
 * D1 allows 1,000 queries per Worker invocation (Workers Paid; each statement of a batch counts),
 * and KV 1,000 operations. A cron invocation runs several jobs, so each gets a share of one budget
 * and stops, leaving the rest for the next run, before the invocation as a whole would fail.
 * Miniflare does not enforce the limit: test/api/lifecycle.test.ts counts the queries instead.
 */
export const D1_QUERIES_PER_INVOCATION = 1_000;

export class QueryBudget {
  private spent = 0;

  constructor(
    readonly limit: number,
    private readonly parent: QueryBudget | null = null,
  ) {}

  get left(): number {
    return Math.max(0, Math.min(this.limit - this.spent, this.parent ? this.parent.left : Infinity));
  }

  /** Takes `n` queries when they fit, else nothing (and false). */
  take(n: number): boolean {
    if (n > this.left) return false;
    this.charge(n);
    return true;
  }

  /** A budget of at most `n` of what is left here, charged to this one. */
  share(n: number): QueryBudget {
    return new QueryBudget(n, this);
  }

  private charge(n: number): void {
    this.spent += n;
    this.parent?.charge(n);
  }
}
