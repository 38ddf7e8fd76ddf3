// Platform rows that break the contract are skipped, counted and logged with their id. A bad row
// stays inside the detection window for many ticks, so each id is logged once per process.
import type { Logger } from '../logger.ts';

export class InvalidRowReporter {
  private readonly seen = new Set<string>();
  private readonly logger: Logger;
  private readonly capacity: number;
  /** Skipped rows per table since start, for metrics and `forewarn run`. */
  readonly totals = new Map<string, number>();

  constructor(logger: Logger, capacity = 10_000) {
    this.logger = logger.child({ component: 'platform' });
    this.capacity = capacity;
  }

  report(table: string, sample: ReadonlyArray<{ id: string; reason: string }>, count: number): void {
    if (count === 0) return;
    let fresh = 0;
    for (const row of sample) {
      const key = `${table}:${row.id}`;
      if (this.seen.has(key)) continue;
      fresh++;
      this.totals.set(table, (this.totals.get(table) ?? 0) + 1);
      this.remember(key);
      this.logger.warn(
        { code: 'FW_PLATFORM_ROW_INVALID', table, rowId: row.id, reason: row.reason },
        `skipped ${table} row ${row.id}: ${row.reason}`,
      );
    }
    if (fresh > 0 && count > sample.length) {
      this.logger.warn(
        { code: 'FW_PLATFORM_ROW_INVALID', table, count },
        `${count} ${table} rows break the contract in this window; only the first ${sample.length} are logged by id`,
      );
    }
  }

  private remember(key: string): void {
    if (this.seen.size >= this.capacity) {
      const oldest = this.seen.values().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    this.seen.add(key);
  }
}
