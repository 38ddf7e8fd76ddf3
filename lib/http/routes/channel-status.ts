// The channel-status API for the platform's checkout page: GET /api/channels/status?region=CN-GD
// answers, for each payment channel offered in the region, its state as the payment-health
// detector last judged it, its open incidents with their numbers, and the healthy backups, so the
// page can warn a user at the moment of paying. Same bearer token as the preferences API
// (FOREWARN_API_TOKEN); a refused call reads nothing. Channels come from the platform's database,
// incidents and pair states from forewarn's, in separate queries (never joined: they may be two
// servers). Payment-specific by nature, so it names its detector; the spine does not.
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  channelStatuses,
  DETECTOR,
  pairKey,
  type ChannelStatus,
  type Evidence,
  type PairState,
} from '../../../detectors/payment-health/index.ts';
import { readEvaluatedAt, readOpenCauseRecords, readSubjectStates } from '../../incidents/store.ts';
import { readPaymentChannels } from '../../platform/payment-channels.ts';
import { tickBounds } from '../../watchdog/bounds.ts';
import { requireApiToken } from '../auth.ts';
import type { HttpDeps, HttpRoutes } from '../deps.ts';

const PATH = '/api/channels/status';

/** ISO 3166-2, as the platform's regions are (payment_attempts.region, users.region). */
const REGION = /^[A-Z]{2}-[A-Z0-9]{1,3}$/;
const REGION_EXPECTED =
  'an ISO 3166-2 region code such as CN-GD (two capital letters, "-", 1-3 capital letters or digits)';

/** The answer's shape (times as ISO 8601). */
export interface ChannelStatusAnswer {
  region: string;
  /** The detector's last tick: the states are as of then (null before its first tick). */
  evaluatedAt: string | null;
  /**
   * No tick within the watchdog's bound for the detector (config watchdog.ticks), or none yet: the
   * states may be out of date, and "healthy" then means "not known to be failing".
   */
  stale: boolean;
  channels: Array<
    Omit<ChannelStatus, 'lastSeenAt' | 'incidents'> & {
      lastSeenAt: string | null;
      incidents: Array<{ id: string; kind: string; openedAt: string; evidence: Evidence }>;
    }
  >;
}

export const channelStatusRoutes: HttpRoutes = {
  parts: [`http:${PATH}`],
  register(server, deps) {
    const config = deps.config;
    if (config === undefined) return;
    if (deps.apiToken === undefined)
      deps.logger.warn(
        { component: 'http', code: 'FW_API_UNAUTHORIZED' },
        'FOREWARN_API_TOKEN is not set: the channel-status API refuses every call',
      );
    void server.register(async (api) => {
      // JSON whatever the client accepts, and no internals.
      api.setErrorHandler((error: Error, request, reply) => {
        request.log.error({ route: PATH, err: error }, 'request failed');
        return reply.code(500).send({ error: 'internal', message: 'something went wrong on our side' });
      });
      api.get(PATH, { onRequest: requireApiToken(deps.apiToken, PATH) }, (request, reply) =>
        answer(deps, config, request, reply),
      );
    });
  },
};

async function answer(
  deps: HttpDeps,
  config: NonNullable<HttpDeps['config']>,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const { region } = request.query as { region?: string | string[] };
  if (typeof region !== 'string' || !REGION.test(region)) {
    const got =
      region === undefined
        ? 'nothing'
        : Array.isArray(region)
          ? 'it more than once'
          : JSON.stringify(region.slice(0, 40));
    return reply.code(400).send({
      error: 'FW_API_INVALID',
      field: 'region',
      message: `the query parameter region: expected ${REGION_EXPECTED}, got ${got}`,
    });
  }
  // The platform's channels, then forewarn's view of the pairs they make in the region.
  const { channels } = await readPaymentChannels(deps.platformDb, deps.platformSchema);
  const keys = channels.map((c) => pairKey(c.id, region));
  const [pairs, open, evaluatedAt] = await Promise.all([
    readSubjectStates<PairState>(deps.db, DETECTOR, keys),
    readOpenCauseRecords(deps.db, DETECTOR, keys),
    readEvaluatedAt(deps.db, DETECTOR),
  ]);
  const statuses = channelStatuses({
    region,
    channels,
    pairs,
    incidents: open.map((i) => ({
      id: i.id,
      channel: (i.subject as { channel: string }).channel,
      kind: i.kind,
      openedAt: i.openedAt,
      evidence: i.evidence as Evidence,
      backupChannels: i.backupChannels,
    })),
    evaluatedAt,
    settings: config().detectors.paymentHealth,
  });
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  const bound = tickBounds(config()).find((b) => b.detector === DETECTOR);
  const body: ChannelStatusAnswer = {
    region,
    evaluatedAt: iso(evaluatedAt),
    stale: evaluatedAt === null || (bound !== undefined && deps.now() - evaluatedAt > bound.boundMs),
    channels: statuses.map((s) => ({
      ...s,
      lastSeenAt: iso(s.lastSeenAt),
      incidents: s.incidents.map((i) => ({
        id: i.id,
        kind: i.kind,
        openedAt: new Date(i.openedAt).toISOString(),
        evidence: i.evidence,
      })),
    })),
  };
  return reply.send(body);
}
