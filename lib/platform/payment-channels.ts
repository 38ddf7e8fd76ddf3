// Reading the platform's payment_channels table (see docs/platform-contract.md).
import type { PaymentChannel } from '../../detectors/payment-health/index.ts';
import { escapeIdentifier, type Queryable } from '../db/pool.ts';

export interface ChannelsRead {
  channels: PaymentChannel[];
  invalid: Array<{ id: string; reason: string }>;
}

export async function readPaymentChannels(db: Queryable, schema: string): Promise<ChannelsRead> {
  const { rows } = await db.query<{
    id: string | null;
    display_name: string | null;
    regions: string[] | null;
    enabled: boolean | null;
    priority: number | null;
  }>(
    `SELECT id, display_name, regions, enabled, priority FROM ${escapeIdentifier(schema)}.payment_channels ORDER BY id`,
  );
  const channels: PaymentChannel[] = [];
  const invalid: ChannelsRead['invalid'] = [];
  for (const row of rows) {
    const reason =
      row.id === null
        ? 'id is null'
        : row.display_name === null
          ? 'display_name is null'
          : row.regions === null
            ? 'regions is null'
            : row.enabled === null
              ? 'enabled is null'
              : row.priority === null
                ? 'priority is null'
                : null;
    if (reason) {
      invalid.push({ id: row.id ?? '(null)', reason });
      continue;
    }
    channels.push({
      id: row.id!,
      displayName: row.display_name!,
      regions: row.regions!,
      enabled: row.enabled!,
      priority: row.priority!,
    });
  }
  return { channels, invalid };
}
